import HTTP
// `make build` (release, static stdlib, every non-test target) compiles this target too, where
// Testing is absent; only the test builds that use it have Testing.
#if canImport(Testing)
import Testing
#endif

/// An `HTTPClient` that answers from a script instead of a network, so tests of the AWS clients and the
/// Lambda Runtime API client see exactly the answers, failures and timeouts they choose, and can check
/// every request that was sent.
public final class ScriptedHTTPClient: HTTPClient {
    public enum Step: Sendable {
        case respond(HTTPResponse)
        case fail(TransportError)
        /// No answer: the request runs for its whole timeout (on the clock, if there is one), then fails as libcurl does.
        case timeOut
    }

    /// The steps still to play, one per request.
    public var script: [Step]
    public private(set) var requests: [HTTPRequest] = []
    /// The virtual time at which each request was sent; empty without a clock.
    public private(set) var sentAt: [Int64] = []
    /// Moved forward by each request's latency and by timeouts; nil when the code under test keeps no time.
    public let clock: ManualClock?
    /// The virtual time each request takes.
    public let latencyMilliseconds: Int64

    public init(_ script: [Step], clock: ManualClock? = nil, latencyMilliseconds: Int64 = 0) {
        precondition(clock != nil || latencyMilliseconds == 0, "latency needs a clock to pass on")
        self.script = script
        self.clock = clock
        self.latencyMilliseconds = latencyMilliseconds
    }

    public func send(_ request: HTTPRequest) throws(TransportError) -> HTTPResponse {
        requests.append(request)
        if let clock {
            sentAt.append(clock.nowMilliseconds)
            clock.nowMilliseconds += latencyMilliseconds
        }
        guard !script.isEmpty else {
            #if canImport(Testing)
            Issue.record("more requests than scripted answers: \(request.method) \(request.url)")
            // A 500 ends the Runtime API loop and is an error to the AWS clients: a broken test cannot spin forever.
            return HTTPResponse(status: 500, headers: [], body: [])
            #else
            fatalError("more requests than scripted answers: \(request.method) \(request.url)")
            #endif
        }
        switch script.removeFirst() {
        case .respond(let response): return response
        case .fail(let error): throw error
        case .timeOut:
            clock?.nowMilliseconds += Int64(request.timeoutMilliseconds ?? 0)
            throw TransportError(code: 28, message: "Operation timed out", isTimeout: true)
        }
    }
}
