module github.com/vsock-guest-exec/vge-go

go 1.22
