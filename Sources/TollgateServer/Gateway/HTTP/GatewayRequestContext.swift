import Hummingbird
import NIOCore

/// The gateway's request context: Hummingbird's, and the connection the request came on (to watch for a hang-up).
struct GatewayRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
