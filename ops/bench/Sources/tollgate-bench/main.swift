import Dispatch
import Foundation
import NIOCore
import NIOPosix

// `mcp-echo`, the upstream of the proxy benchmarks, runs its handlers on SwiftNIO's event loops, as `tollgate` does:
// with the default executor every request hops to a pool thread and back, and the upstream then costs the shared
// 2-core machine more than it must. The other subcommands keep the default executor: some of them wait on processes.
if CommandLine.arguments.dropFirst().first == "mcp-echo" {
    NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
}

Task {
    await TollgateBench.main()
    exit(0)
}
dispatchMain()
