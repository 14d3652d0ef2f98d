module vsock-guest-exec/test/hosts/go_host

go 1.22
