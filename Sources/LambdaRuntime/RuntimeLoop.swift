import RotatorJSON
import RotatorLogging
#if canImport(Glibc)
import Glibc
#endif

/// What the function does with one event: a JSON answer, or an error reported to Lambda.
public protocol InvocationHandler {
    func handle(_ invocation: Invocation, logger: Logger) throws(FunctionError) -> JSON
}

/// The custom runtime's loop: next -> handle -> response | error, forever. A bad event costs only
/// that event; the loop ends only when the Runtime API itself fails.
public struct RuntimeLoop {
    let api: RuntimeAPIClient
    let logger: Logger

    public init(api: RuntimeAPIClient, logger: Logger) {
        self.api = api
        self.logger = logger
    }

    /// Returns only on a fatal Runtime API error; the caller exits non-zero.
    public func run(_ handler: InvocationHandler) -> RuntimeAPIError {
        while true {
            do {
                try serveOne(handler)
            } catch where error.isFatal {
                logger.error("runtime API failed, exiting", ("reason", error.description))
                return error
            } catch {
                logger.warn("invocation lost", ("reason", error.description))
            }
        }
    }

    func serveOne(_ handler: InvocationHandler) throws(RuntimeAPIError) {
        let invocation = try api.next()
        // The X-Ray SDKs of any library we might call read the trace from the environment.
        if let trace = invocation.traceId { setenv("_X_AMZN_TRACE_ID", trace, 1) } else { unsetenv("_X_AMZN_TRACE_ID") }
        let log = logger.with(("requestId", invocation.requestId))
        switch Result(catching: { () throws(FunctionError) in try handler.handle(invocation, logger: log) }) {
        case .success(let answer):
            try api.respond(requestId: invocation.requestId, body: Array(answer.serialized.utf8))
        case .failure(let error):
            try api.fail(requestId: invocation.requestId, error)
        }
    }
}
