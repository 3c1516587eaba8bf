import Dispatch
import Foundation
import NIOCore
import NIOPosix

// Swift Concurrency's jobs run on SwiftNIO's event loops instead of a pool of their own, before any task starts: a
// request's handler, its policy decision and its upstream call then stay on the thread that does their I/O, instead of
// hopping between the event loops and the concurrency pool several times per call. Blocking calls never run there (the
// database client has its own threads).
NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()

Task {
    await Tollgate.main()
    exit(0)
}
dispatchMain()
