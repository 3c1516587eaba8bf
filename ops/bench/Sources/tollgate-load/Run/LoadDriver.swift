import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs one load test on one event loop: performs the MCP handshake for each session, opens the connection pool,
/// sends `tools/call` at a fixed rate or as fast as the connections allow, closes the sessions and reports.
///
/// Everything happens on `eventLoop`, so the driver needs no locks; one event loop thread sends and reads tens of
/// thousands of calls a second, far more than the servers it measures answer.
///
/// ```swift
/// let report = try eventLoop.flatSubmit { LoadDriver.run(configuration, address: address, on: eventLoop) }.wait()
/// ```
final class LoadDriver {
    private enum Phase {
        /// `initialize` and `notifications/initialized` for each session in turn, over the first connection.
        case handshaking
        /// Opening the other `--connections` before the clock starts.
        case openingPool
        /// Sending calls: warm-up, then the measured window.
        case running
        /// No new calls; waiting for those in flight to be answered or to time out.
        case draining
        /// `DELETE` for each session; `pending` are not answered yet.
        case closingSessions(pending: Int)
        case finished
    }

    /// A request waiting for a connection, and what to do with its outcome.
    private struct Job {
        let serial: Int
        let request: HTTPRequest
        /// The time latency is measured from: the scheduled time of a fixed-rate call, the send time otherwise.
        let origin: NIODeadline
        let deadline: NIODeadline
        /// A call of the measured window, whose send lag counts.
        let measured: Bool
        let onOutcome: (ResponseOutcome, _ sessionID: String?) -> Void
    }

    private let configuration: LoadConfiguration
    private let eventLoop: any EventLoop
    private let address: SocketAddress
    private let factory: MCPRequestFactory
    private let promise: EventLoopPromise<LoadReport>
    private var phase = Phase.handshaking

    private var connections: [ObjectIdentifier: MCPConnectionHandler] = [:]
    private var idle: [MCPConnectionHandler] = []
    private var opening = 0
    private let connectionCap: Int
    private var peakConnections = 0
    private var connectFailures = 0
    /// No new connection is attempted before this time after one failed, so a dead server is not hammered.
    private var noConnectBefore = NIODeadline.uptimeNanoseconds(0)

    private var queue = CircularBuffer<Job>()
    private var nextSerial = 0
    /// Jobs up to this serial waited in the queue while the pool was at its cap.
    private var cappedThroughSerial = -1
    private var nextJSONRPCID = 1
    private var sessions: [MCPSession] = []
    private var sessionsClosed = 0
    private var notes: [String] = []

    private var startTime = NIODeadline.now()
    /// Every measured call, when the configuration keeps them (`--samples-file`).
    private var samples: [LoadSample] = []
    private var measureStart = NIODeadline.now()
    private var measureEnd = NIODeadline.now()
    /// The index of the next fixed-rate call to schedule.
    private var nextCallIndex: Int64 = 0
    /// Calls queued or in flight.
    private var outstandingCalls = 0
    private var statistics = LoadStatistics()
    private var sweepTask: Scheduled<Void>?
    private var pacingTask: Scheduled<Void>?

    private static let sweepInterval = TimeAmount.milliseconds(20)
    private static let reconnectBackoff = TimeAmount.milliseconds(100)

    /// Starts the test; the future completes with the report, or fails if the handshake or the first connections
    /// fail. Must be called on `eventLoop`.
    static func run(_ configuration: LoadConfiguration, address: SocketAddress, on eventLoop: any EventLoop) -> EventLoopFuture<LoadReport> {
        let driver = LoadDriver(configuration: configuration, address: address, eventLoop: eventLoop)
        driver.start()
        return driver.promise.futureResult
    }

    private init(configuration: LoadConfiguration, address: SocketAddress, eventLoop: any EventLoop) {
        self.configuration = configuration
        self.address = address
        self.eventLoop = eventLoop
        self.factory = MCPRequestFactory(configuration: configuration)
        self.promise = eventLoop.makePromise()
        switch configuration.mode {
        case .fixedRate: connectionCap = configuration.maximumConnections
        case .saturate: connectionCap = configuration.connections
        }
    }

    private var isFinished: Bool {
        if case .finished = phase { return true }
        return false
    }

    private var isRunning: Bool {
        if case .running = phase { return true }
        return false
    }

    // MARK: - Phases

    private func start() {
        scheduleSweep()
        openSession(number: 0)
    }

    private func openSession(number: Int) {
        guard number < configuration.sessions else {
            openPool()
            return
        }
        submitControl(factory.initialize(id: takeJSONRPCID())) { [self] outcome, sessionID in
            guard case .result(let result) = outcome, result.isObject else {
                fail(.handshakeFailed(step: "initialize", outcome: outcome))
                return
            }
            let version = result["protocolVersion"]?.string ?? configuration.protocolVersion
            if version != configuration.protocolVersion {
                note("the server chose protocol \(version) (offered \(configuration.protocolVersion)); using \(version)")
            }
            if sessionID == nil && number == 0 {
                note("the server gave no Mcp-Session-Id: calls are sent without one")
            }
            let session = MCPSession(id: sessionID, protocolVersion: version, baseHeaders: factory.baseHeaders)
            sessions.append(session)
            submitControl(factory.initialized(session: session)) { [self] outcome, _ in
                guard case .acknowledged(let status) = outcome else {
                    fail(.handshakeFailed(step: "notifications/initialized", outcome: outcome))
                    return
                }
                if status != 202 && number == 0 {
                    note("notifications/initialized was answered with HTTP \(status), not 202")
                }
                openSession(number: number + 1)
            }
        }
    }

    private func openPool() {
        phase = .openingPool
        let missing = configuration.connections - connections.count - opening
        guard missing > 0 else {
            startLoad()
            return
        }
        for _ in 0..<missing { openConnection() }
    }

    private func startLoad() {
        phase = .running
        startTime = .now()
        measureStart = startTime + configuration.warmup
        measureEnd = measureStart + configuration.duration
        let version = sessions.first?.protocolVersion ?? configuration.protocolVersion
        let plural = sessions.count == 1 ? "" : "s"
        StandardError.print(
            "tollgate-load: \(sessions.count) session\(plural) at protocol \(version), \(connections.count) connections; "
                + "warming up \(configuration.warmup.shortDescription), then measuring \(configuration.duration.shortDescription)"
        )
        switch configuration.mode {
        case .fixedRate:
            pace()
        case .saturate:
            drain()
            pacingTask = eventLoop.assumeIsolated().scheduleTask(deadline: measureEnd) { [self] in stopSending() }
        }
    }

    /// Queues every fixed-rate call that is due, then sleeps until the next one is.
    private func pace() {
        guard isRunning, case .fixedRate(let rate) = configuration.mode else { return }
        let now = NIODeadline.now()
        while true {
            let due = startTime + .nanoseconds(Int64((Double(nextCallIndex) * 1e9 / rate).rounded()))
            if due >= measureEnd {
                drain()
                stopSending()
                return
            }
            if due > now {
                drain()
                pacingTask = eventLoop.assumeIsolated().scheduleTask(deadline: due) { [self] in pace() }
                return
            }
            nextCallIndex += 1
            queue.append(makeCall(origin: due, measured: due >= measureStart))
        }
    }

    private func stopSending() {
        guard isRunning else { return }
        phase = .draining
        closeSessionsIfDrained()
    }

    private func closeSessionsIfDrained() {
        guard case .draining = phase, outstandingCalls == 0 else { return }
        let open = sessions.filter { $0.id != nil }
        guard !open.isEmpty else {
            finish()
            return
        }
        phase = .closingSessions(pending: open.count)
        for session in open {
            submitControl(factory.delete(session: session)) { [self] outcome, _ in
                if case .acknowledged = outcome {
                    sessionsClosed += 1
                } else if sessionsClosed == 0 {
                    note("DELETE of a session: \(outcome)")
                }
                guard case .closingSessions(let pending) = phase else { return }
                if pending > 1 {
                    phase = .closingSessions(pending: pending - 1)
                } else {
                    finish()
                }
            }
        }
    }

    private func finish() {
        guard !isFinished else { return }
        phase = .finished
        stopTimers()
        for connection in connections.values { connection.close() }
        promise.succeed(makeReport())
    }

    private func fail(_ error: LoadError) {
        guard !isFinished else { return }
        phase = .finished
        stopTimers()
        for connection in connections.values { connection.close() }
        promise.fail(error)
    }

    private func stopTimers() {
        sweepTask?.cancel()
        pacingTask?.cancel()
    }

    // MARK: - Calls

    private func makeCall(origin: NIODeadline, measured: Bool) -> Job {
        outstandingCalls += 1
        let session = sessions[nextSerial % sessions.count]
        let request = factory.toolCall(id: takeJSONRPCID(), session: session)
        return Job(serial: takeSerial(), request: request, origin: origin, deadline: origin + configuration.timeout, measured: measured) {
            [self] outcome, _ in
            outstandingCalls -= 1
            if measured {
                let latency = NIODeadline.now() - origin
                statistics.record(outcome, latency: latency)
                if configuration.keepSamples {
                    samples.append(LoadSample(due: origin - measureStart, latency: latency, ok: outcome.isOK))
                }
            }
            closeSessionsIfDrained()
        }
    }

    /// Queues a handshake or clean-up request.
    private func submitControl(_ request: HTTPRequest, onOutcome: @escaping (ResponseOutcome, _ sessionID: String?) -> Void) {
        let now = NIODeadline.now()
        queue.append(
            Job(serial: takeSerial(), request: request, origin: now, deadline: now + configuration.timeout, measured: false, onOutcome: onOutcome)
        )
        drain()
    }

    /// Gives queued jobs to idle connections (in saturation, new calls to every idle connection), and opens more
    /// connections when jobs are left waiting.
    private func drain() {
        while !queue.isEmpty, let connection = idle.popLast() {
            dispatch(queue.removeFirst(), on: connection)
        }
        if isRunning, configuration.mode == .saturate {
            while let connection = idle.popLast() {
                let now = NIODeadline.now()
                dispatch(makeCall(origin: now, measured: now >= measureStart), on: connection)
            }
        }
        if let last = queue.last {
            growPool(waitingThrough: last.serial)
        }
    }

    private func dispatch(_ job: Job, on connection: MCPConnectionHandler) {
        if job.measured {
            statistics.sendLag.record(nanoseconds: (NIODeadline.now() - job.origin).nanoseconds)
            if job.serial <= cappedThroughSerial { statistics.waitedAtCap += 1 }
        }
        connection.send(job.request, deadline: job.deadline, onOutcome: job.onOutcome)
    }

    private func takeJSONRPCID() -> Int {
        defer { nextJSONRPCID += 1 }
        return nextJSONRPCID
    }

    private func takeSerial() -> Int {
        defer { nextSerial += 1 }
        return nextSerial
    }

    // MARK: - Connections

    private func growPool(waitingThrough lastSerial: Int) {
        let total = connections.count + opening
        guard total < connectionCap else {
            if isRunning { cappedThroughSerial = lastSerial }
            return
        }
        guard NIODeadline.now() >= noConnectBefore else { return }
        let wanted = min(queue.count - opening, connectionCap - total)
        if wanted > 0 {
            for _ in 0..<wanted { openConnection() }
        }
    }

    private func openConnection() {
        opening += 1
        let driver = NIOLoopBound(self, eventLoop: eventLoop)
        ClientBootstrap(group: eventLoop)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(MCPConnectionHandler(driver: driver.value))
                }
            }
            .connect(to: address)
            .assumeIsolated()
            .whenComplete { [self] result in
                opening -= 1
                switch result {
                case .success(let channel):
                    connectionOpened(channel)
                case .failure(let error):
                    connectionFailed(error)
                }
            }
    }

    private func connectionOpened(_ channel: any Channel) {
        guard !isFinished, channel.isActive, let handler = try? channel.pipeline.syncOperations.handler(type: MCPConnectionHandler.self) else {
            channel.close(promise: nil)
            return
        }
        connections[ObjectIdentifier(handler)] = handler
        peakConnections = max(peakConnections, connections.count)
        connectionBecameIdle(handler)
        if case .openingPool = phase, connections.count >= configuration.connections {
            startLoad()
        }
    }

    private func connectionFailed(_ error: any Error) {
        connectFailures += 1
        noConnectBefore = .now() + Self.reconnectBackoff
        switch phase {
        case .handshaking, .openingPool:
            fail(.cannotConnect(to: configuration.target.authority, reason: Self.describe(error)))
        case .running, .draining, .closingSessions:
            if connectFailures == 1 { note("a connection could not be opened: \(Self.describe(error))") }
        case .finished:
            break
        }
    }

    /// A connection error as a person reads it: `Connection refused` rather than NIO's wrapped description.
    private static func describe(_ error: any Error) -> String {
        if let error = error as? IOError, let message = strerror(error.errnoCode) {
            return String(cString: message)
        }
        return String(describing: error)
    }

    /// Called by a connection when its response has ended and it can carry another request.
    func connectionBecameIdle(_ connection: MCPConnectionHandler) {
        guard connections[ObjectIdentifier(connection)] != nil else { return }
        idle.append(connection)
        drain()
    }

    /// Called by a connection when it has closed, whoever closed it.
    func connectionClosed(_ connection: MCPConnectionHandler) {
        guard connections.removeValue(forKey: ObjectIdentifier(connection)) != nil else { return }
        idle.removeAll { $0 === connection }
        switch phase {
        case .openingPool:
            openConnection()
        case .running:
            topUpSaturationPool()
        default:
            break
        }
        if let last = queue.last {
            growPool(waitingThrough: last.serial)
        }
    }

    /// In saturation, keeps `--connections` calls in flight when the server closes connections.
    private func topUpSaturationPool() {
        guard isRunning, configuration.mode == .saturate, NIODeadline.now() >= noConnectBefore else { return }
        let missing = configuration.connections - connections.count - opening
        if missing > 0 {
            for _ in 0..<missing { openConnection() }
        }
    }

    // MARK: - Time-outs

    private func scheduleSweep() {
        sweepTask = eventLoop.assumeIsolated().scheduleTask(in: Self.sweepInterval) { [self] in sweep() }
    }

    /// Times out queued jobs and requests in flight whose deadline has passed, and retries connections.
    private func sweep() {
        guard !isFinished else { return }
        let now = NIODeadline.now()
        while let job = queue.first, job.deadline <= now {
            queue.removeFirst()
            if job.measured { statistics.expiredUnsent += 1 }
            job.onOutcome(.timedOut, nil)
        }
        for connection in connections.values {
            connection.expire(ifPastDeadlineAt: now)
        }
        topUpSaturationPool()
        if let last = queue.last {
            growPool(waitingThrough: last.serial)
        }
        if !isFinished { scheduleSweep() }
    }

    // MARK: - Report

    private func note(_ text: String) {
        notes.append(text)
    }

    private func makeReport() -> LoadReport {
        LoadReport(
            url: configuration.target.description,
            tool: configuration.tool,
            mode: configuration.mode,
            duration: configuration.duration,
            warmup: configuration.warmup,
            connections: configuration.connections,
            connectionCap: connectionCap,
            peakConnections: peakConnections,
            connectFailures: connectFailures,
            sessions: sessions.count,
            sessionsClosed: sessionsClosed,
            protocolVersion: sessions.first?.protocolVersion ?? configuration.protocolVersion,
            statistics: statistics,
            notes: notes,
            samples: samples
        )
    }
}
