import HTTP
import RotatorJSON

/// One event handed to the function by `GET /runtime/invocation/next`.
public struct Invocation: Sendable {
    public let requestId: String
    /// Absolute, in milliseconds since the Unix epoch.
    public let deadlineMilliseconds: Int64
    public let invokedFunctionArn: String
    public let traceId: String?
    public let body: [UInt8]
}

/// The Runtime API refused us. `isFatal` (a 500, or no answer at all) means the environment is
/// broken and the process must exit; otherwise only this invocation is lost.
public struct RuntimeAPIError: Error, CustomStringConvertible {
    public let description: String
    public let isFatal: Bool
}

/// The error document Lambda expects for a failed invocation or a failed init.
public struct FunctionError: Error, Sendable, Equatable {
    public let errorType: String
    public let errorMessage: String

    public init(errorType: String, errorMessage: String) {
        self.errorType = errorType
        self.errorMessage = errorMessage
    }

    var body: [UInt8] {
        Array(JSON.object([
            ("errorMessage", .string(errorMessage)), ("errorType", .string(errorType)), ("stackTrace", .array([])),
        ]).serialized.utf8)
    }
}

/// The Lambda Runtime API, version 2018-06-01, for a custom runtime.
public struct RuntimeAPIClient {
    private let base: String
    private let http: HTTPClient
    /// Posting a result is a loopback call; it should never take long.
    static let postTimeoutMilliseconds = 10_000

    public init(runtimeAPI: String, http: HTTPClient) {
        base = "http://\(runtimeAPI)/2018-06-01/runtime"
        self.http = http
    }

    /// Waits, without a timeout, for the next event: the process is frozen between events.
    public func next() throws(RuntimeAPIError) -> Invocation {
        let response = try send(HTTPRequest(method: "GET", url: "\(base)/invocation/next"))
        guard response.status == 200 else { throw RuntimeAPIClient.refusal("next", response) }
        guard let requestId = response.header("Lambda-Runtime-Aws-Request-Id"), !requestId.isEmpty,
              let deadline = response.header("Lambda-Runtime-Deadline-Ms").flatMap({ Int64($0) }) else {
            throw RuntimeAPIError(description: "next: answer without request id or deadline", isFatal: true)
        }
        return Invocation(requestId: requestId, deadlineMilliseconds: deadline,
                          invokedFunctionArn: response.header("Lambda-Runtime-Invoked-Function-Arn") ?? "",
                          traceId: response.header("Lambda-Runtime-Trace-Id"), body: response.body)
    }

    public func respond(requestId: String, body: [UInt8]) throws(RuntimeAPIError) {
        try post("invocation/\(requestId)/response", body: body, headers: [])
    }

    public func fail(requestId: String, _ error: FunctionError) throws(RuntimeAPIError) {
        try post("invocation/\(requestId)/error", body: error.body,
                 headers: [("Lambda-Runtime-Function-Error-Type", error.errorType)])
    }

    public func initFailed(_ error: FunctionError) throws(RuntimeAPIError) {
        try post("init/error", body: error.body, headers: [("Lambda-Runtime-Function-Error-Type", error.errorType)])
    }

    private func post(_ path: String, body: [UInt8], headers: [(name: String, value: String)]) throws(RuntimeAPIError) {
        let response = try send(HTTPRequest(method: "POST", url: "\(base)/\(path)",
                                            headers: [("Content-Type", "application/json")] + headers, body: body,
                                            timeoutMilliseconds: RuntimeAPIClient.postTimeoutMilliseconds))
        guard (200..<300).contains(response.status) else { throw RuntimeAPIClient.refusal(path, response) }
    }

    private func send(_ request: HTTPRequest) throws(RuntimeAPIError) -> HTTPResponse {
        do {
            return try http.send(request)
        } catch {
            throw RuntimeAPIError(description: "Runtime API unreachable: \(error)", isFatal: true)
        }
    }

    private static func refusal(_ what: String, _ response: HTTPResponse) -> RuntimeAPIError {
        RuntimeAPIError(description: "\(what): Runtime API answered HTTP \(response.status)", isFatal: response.status >= 500)
    }
}
