#pragma once
// A TCP port on 127.0.0.1 that nothing listens on right now: the kernel's pick for a bind to port 0. For
// helpers we start that need a port of their own (torchrun's rendezvous store, test servers); another
// process could take it before ours binds, so a caller must still fail clearly on "address in use".

namespace handoff {

// Throws Error when no socket can be bound.
int free_local_port();

}  // namespace handoff
