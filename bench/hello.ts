// The baseline for the footprint rows: the smallest compiled Bun program that does what "ready" means
// for the agent, listening on a Unix socket (argv[2]), then idling until killed.
Bun.listen({ unix: process.argv[2]!, socket: { data() {} } });
