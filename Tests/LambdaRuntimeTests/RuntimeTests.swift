import Glibc
import HTTP
import RotatorJSON
import LambdaRuntime
import RotatorLogging
import RotatorTestSupport
import Synchronization
import Testing

extension ScriptedHTTPClient {
    /// The requests' paths below the Runtime API's base URL.
    var paths: [String] { requests.map { String($0.url.dropFirst(base.count)) } }
}

let runtimeAPI = "127.0.0.1:9001"
let base = "http://127.0.0.1:9001/2018-06-01"

/// A `/next` answer as Lambda sends it (example values from the Runtime API documentation).
func event(_ requestId: String, body: String = #"{"Step":"createSecret"}"#, trace: String? = nil,
           deadline: String = "1542409706888") -> ScriptedHTTPClient.Step {
    var headers: [(name: String, value: String)] = [
        ("Lambda-Runtime-Aws-Request-Id", requestId),
        ("Lambda-Runtime-Deadline-Ms", deadline),
        ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-2:123456789012:function:custom-runtime"),
        ("Content-Type", "application/json"),
    ]
    if let trace { headers.append(("Lambda-Runtime-Trace-Id", trace)) }
    return .respond(HTTPResponse(status: 200, headers: headers, body: Array(body.utf8)))
}

func status(_ code: Int, _ body: String = "") -> ScriptedHTTPClient.Step {
    .respond(HTTPResponse(status: code, headers: [], body: Array(body.utf8)))
}

let accepted = status(202, #"{"status":"OK"}"#)

extension HTTPRequest {
    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}

@Suite struct RuntimeAPIClientTests {
    @Test func nextParsesTheEvent() throws {
        let trace = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
        let http = ScriptedHTTPClient([event("8476a536-e9f4-11e8-9739-2dfe598c3fcd", trace: trace)])
        let invocation = try RuntimeAPIClient(runtimeAPI: runtimeAPI, http: http).next()
        #expect(invocation.requestId == "8476a536-e9f4-11e8-9739-2dfe598c3fcd")
        #expect(invocation.deadlineMilliseconds == 1_542_409_706_888)
        #expect(invocation.invokedFunctionArn == "arn:aws:lambda:us-east-2:123456789012:function:custom-runtime")
        #expect(invocation.traceId == trace)
        #expect(invocation.body == Array(#"{"Step":"createSecret"}"#.utf8))

        let request = try #require(http.requests.first)
        #expect(request.method == "GET")
        #expect(request.url == "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next")
        #expect(request.timeoutMilliseconds == nil)
        #expect(request.body.isEmpty)
    }

    @Test func headerNamesAreCaseInsensitive() throws {
        let http = ScriptedHTTPClient([.respond(HTTPResponse(status: 200, headers: [
            ("lambda-runtime-aws-request-id", "req-lower"),
            ("LAMBDA-RUNTIME-DEADLINE-MS", "1700000000123"),
            ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:eu-west-1:123456789012:function:f"),
            ("LAMBDA-RUNTIME-TRACE-ID", "Root=1-abc"),
        ], body: Array("{}".utf8)))])
        let invocation = try RuntimeAPIClient(runtimeAPI: runtimeAPI, http: http).next()
        #expect(invocation.requestId == "req-lower")
        #expect(invocation.deadlineMilliseconds == 1_700_000_000_123)
        #expect(invocation.invokedFunctionArn == "arn:aws:lambda:eu-west-1:123456789012:function:f")
        #expect(invocation.traceId == "Root=1-abc")
        #expect(invocation.body == Array("{}".utf8))
    }

    @Test func traceIsNilWhenAbsent() throws {
        let http = ScriptedHTTPClient([event("r")])
        #expect(try RuntimeAPIClient(runtimeAPI: runtimeAPI, http: http).next().traceId == nil)
    }

    @Test func nextWithoutRequestIdOrDeadlineThrows() {
        let noId = ScriptedHTTPClient([.respond(HTTPResponse(status: 200, headers: [("Lambda-Runtime-Deadline-Ms", "1")], body: []))])
        #expect(caught { () throws(RuntimeAPIError) in _ = try RuntimeAPIClient(runtimeAPI: runtimeAPI, http: noId).next() } != nil)
        let noDeadline = ScriptedHTTPClient([.respond(HTTPResponse(status: 200, headers: [("Lambda-Runtime-Aws-Request-Id", "r")], body: []))])
        #expect(caught { () throws(RuntimeAPIError) in _ = try RuntimeAPIClient(runtimeAPI: runtimeAPI, http: noDeadline).next() } != nil)
        let badDeadline = ScriptedHTTPClient([event("r", deadline: "soon")])
        #expect(caught { () throws(RuntimeAPIError) in _ = try RuntimeAPIClient(runtimeAPI: runtimeAPI, http: badDeadline).next() } != nil)
    }

    @Test(arguments: [500, 502])
    func serverErrorOnNextIsFatal(_ code: Int) throws {
        let http = ScriptedHTTPClient([status(code)])
        let error = try #require(caught { () throws(RuntimeAPIError) in _ = try RuntimeAPIClient(runtimeAPI: runtimeAPI, http: http).next() })
        #expect(error.isFatal)
    }

    @Test func unreachableRuntimeAPIIsFatal() throws {
        let http = ScriptedHTTPClient([.fail(TransportError(code: 7, message: "Couldn't connect to server", isTimeout: false))])
        let error = try #require(caught { () throws(RuntimeAPIError) in _ = try RuntimeAPIClient(runtimeAPI: runtimeAPI, http: http).next() })
        #expect(error.isFatal)
    }

    @Test func respondPostsTheBodyToTheResponsePath() throws {
        let http = ScriptedHTTPClient([accepted])
        try RuntimeAPIClient(runtimeAPI: runtimeAPI, http: http).respond(requestId: "req-1", body: Array(#"{"ok":true}"#.utf8))
        let request = try #require(http.requests.first)
        #expect(request.method == "POST")
        #expect(request.url == "http://127.0.0.1:9001/2018-06-01/runtime/invocation/req-1/response")
        #expect(request.body == Array(#"{"ok":true}"#.utf8))
        let timeout = try #require(request.timeoutMilliseconds)
        #expect(timeout > 0)
    }

    @Test func failPostsTheErrorDocument() throws {
        let http = ScriptedHTTPClient([accepted])
        let failure = FunctionError(errorType: "Rotation.SetSecretFailed", errorMessage: "host said \"no\"\nline 2")
        try RuntimeAPIClient(runtimeAPI: runtimeAPI, http: http).fail(requestId: "req-2", failure)
        let request = try #require(http.requests.first)
        #expect(request.method == "POST")
        #expect(request.url == "http://127.0.0.1:9001/2018-06-01/runtime/invocation/req-2/error")
        #expect(request.header("Lambda-Runtime-Function-Error-Type") == "Rotation.SetSecretFailed")
        let body = try JSON.parse(request.body)
        #expect(body["errorMessage"] == .string("host said \"no\"\nline 2"))
        #expect(body["errorType"] == .string("Rotation.SetSecretFailed"))
        #expect(body["stackTrace"]?.arrayValue != nil)
        #expect(body.objectValue?.count == 3)
    }

    @Test func initFailedPostsToInitError() throws {
        let http = ScriptedHTTPClient([accepted])
        try RuntimeAPIClient(runtimeAPI: runtimeAPI, http: http)
            .initFailed(FunctionError(errorType: "Runtime.ConfigurationError", errorMessage: "AWS_REGION is not set"))
        let request = try #require(http.requests.first)
        #expect(request.method == "POST")
        #expect(request.url == "http://127.0.0.1:9001/2018-06-01/runtime/init/error")
        #expect(request.header("Lambda-Runtime-Function-Error-Type") == "Runtime.ConfigurationError")
        let body = try JSON.parse(request.body)
        #expect(body["errorMessage"] == .string("AWS_REGION is not set"))
        #expect(body["errorType"] == .string("Runtime.ConfigurationError"))
        #expect(body["stackTrace"]?.arrayValue != nil)
    }

    @Test(arguments: [400, 403, 413])
    func clientErrorOnResponseIsNotFatal(_ code: Int) throws {
        let http = ScriptedHTTPClient([status(code, #"{"errorMessage":"x","errorType":"InvalidRequestID"}"#)])
        let error = try #require(caught { () throws(RuntimeAPIError) in
            try RuntimeAPIClient(runtimeAPI: runtimeAPI, http: http).respond(requestId: "r", body: [])
        })
        #expect(!error.isFatal)
    }

    @Test(arguments: [400, 403])
    func clientErrorOnErrorPostIsNotFatal(_ code: Int) throws {
        let http = ScriptedHTTPClient([status(code)])
        let error = try #require(caught { () throws(RuntimeAPIError) in
            try RuntimeAPIClient(runtimeAPI: runtimeAPI, http: http).fail(requestId: "r", FunctionError(errorType: "T", errorMessage: "m"))
        })
        #expect(!error.isFatal)
    }

    @Test func serverErrorOnResponseIsFatal() throws {
        let http = ScriptedHTTPClient([status(500)])
        let error = try #require(caught { () throws(RuntimeAPIError) in
            try RuntimeAPIClient(runtimeAPI: runtimeAPI, http: http).respond(requestId: "r", body: [])
        })
        #expect(error.isFatal)
    }
}

/// A handler whose answers are scripted and which records what it saw.
final class ScriptedHandler: InvocationHandler {
    struct Seen {
        let requestId: String
        let body: String
        let traceEnvironment: String?
        let loggerRequestId: String?
    }

    var answers: [Result<JSON, FunctionError>]
    private(set) var seen: [Seen] = []

    init(_ answers: [Result<JSON, FunctionError>]) { self.answers = answers }

    func handle(_ invocation: Invocation, logger: Logger) throws(FunctionError) -> JSON {
        seen.append(Seen(requestId: invocation.requestId, body: String(decoding: invocation.body, as: UTF8.self),
                         traceEnvironment: getenv("_X_AMZN_TRACE_ID").map { String(cString: $0) },
                         loggerRequestId: logger.context.first { $0.0 == "requestId" }?.1))
        guard !answers.isEmpty else { throw FunctionError(errorType: "Test.Unscripted", errorMessage: "no answer scripted") }
        switch answers.removeFirst() {
        case .success(let value): return value
        case .failure(let error): throw error
        }
    }
}

let quietLogger = Logger(format: .text, sink: { _ in })

/// The loop sets a process-wide environment variable: these tests run one at a time.
@Suite(.serialized) struct RuntimeLoopTests {
    @Test func servesEventsUntilTheRuntimeAPIFails() throws {
        let http = ScriptedHTTPClient([event("a", body: #"{"n":1}"#), accepted, event("b"), accepted, status(500)])
        let handler = ScriptedHandler([.success(.object([("ok", .bool(true))])), .success(.null)])
        let error = RuntimeLoop(api: RuntimeAPIClient(runtimeAPI: runtimeAPI, http: http), logger: quietLogger).run(handler)
        #expect(error.isFatal)
        #expect(http.paths == ["/runtime/invocation/next", "/runtime/invocation/a/response",
                               "/runtime/invocation/next", "/runtime/invocation/b/response", "/runtime/invocation/next"])
        #expect(http.requests[1].body == Array(#"{"ok":true}"#.utf8))
        #expect(http.requests[3].body == Array("null".utf8))
        #expect(handler.seen.map(\.requestId) == ["a", "b"])
        #expect(handler.seen.first?.body == #"{"n":1}"#)
        #expect(handler.seen.map(\.loggerRequestId) == ["a", "b"])
    }

    @Test func fatalNextMakesRunReturnImmediately() {
        let http = ScriptedHTTPClient([status(500)])
        let handler = ScriptedHandler([])
        let error = RuntimeLoop(api: RuntimeAPIClient(runtimeAPI: runtimeAPI, http: http), logger: quietLogger).run(handler)
        #expect(error.isFatal)
        #expect(http.requests.count == 1)
        #expect(handler.seen.isEmpty)
    }

    @Test func unreachableRuntimeAPIEndsTheLoop() {
        let http = ScriptedHTTPClient([event("a"), .fail(TransportError(code: 52, message: "Empty reply from server", isTimeout: false))])
        let handler = ScriptedHandler([.success(.null)])
        let error = RuntimeLoop(api: RuntimeAPIClient(runtimeAPI: runtimeAPI, http: http), logger: quietLogger).run(handler)
        #expect(error.isFatal)
        #expect(http.requests.count == 2)
    }

    @Test(arguments: [400, 403])
    func refusedResponseLosesOnlyThatInvocation(_ code: Int) {
        let http = ScriptedHTTPClient([event("a"), status(code), event("b"), accepted, status(500)])
        let handler = ScriptedHandler([.success(.null), .success(.null)])
        let error = RuntimeLoop(api: RuntimeAPIClient(runtimeAPI: runtimeAPI, http: http), logger: quietLogger).run(handler)
        #expect(error.isFatal)
        #expect(http.paths == ["/runtime/invocation/next", "/runtime/invocation/a/response",
                               "/runtime/invocation/next", "/runtime/invocation/b/response", "/runtime/invocation/next"])
        #expect(handler.seen.map(\.requestId) == ["a", "b"])
    }

    @Test func throwingHandlerPostsAnErrorAndTheNextEventIsServed() throws {
        let http = ScriptedHTTPClient([event("a"), accepted, event("b"), accepted, status(500)])
        let handler = ScriptedHandler([
            .failure(FunctionError(errorType: "Rotation.TestSecretFailed", errorMessage: "login refused")),
            .success(.string("done")),
        ])
        _ = RuntimeLoop(api: RuntimeAPIClient(runtimeAPI: runtimeAPI, http: http), logger: quietLogger).run(handler)
        #expect(http.paths == ["/runtime/invocation/next", "/runtime/invocation/a/error",
                               "/runtime/invocation/next", "/runtime/invocation/b/response", "/runtime/invocation/next"])
        let errorPost = http.requests[1]
        #expect(errorPost.header("Lambda-Runtime-Function-Error-Type") == "Rotation.TestSecretFailed")
        let body = try JSON.parse(errorPost.body)
        #expect(body["errorType"] == .string("Rotation.TestSecretFailed"))
        #expect(body["errorMessage"] == .string("login refused"))
        #expect(http.requests[3].body == Array(#""done""#.utf8))
    }

    @Test func refusedErrorPostIsNotFatal() {
        let http = ScriptedHTTPClient([event("a"), status(400), event("b"), accepted, status(500)])
        let handler = ScriptedHandler([.failure(FunctionError(errorType: "E", errorMessage: "m")), .success(.null)])
        _ = RuntimeLoop(api: RuntimeAPIClient(runtimeAPI: runtimeAPI, http: http), logger: quietLogger).run(handler)
        #expect(handler.seen.map(\.requestId) == ["a", "b"])
        #expect(http.requests.count == 5)
    }

    @Test func traceIdIsExportedAndClearedWhenAbsent() {
        setenv("_X_AMZN_TRACE_ID", "stale-from-before", 1)
        defer { unsetenv("_X_AMZN_TRACE_ID") }
        let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        let http = ScriptedHTTPClient([event("a", trace: trace), accepted, event("b"), accepted, status(500)])
        let handler = ScriptedHandler([.success(.null), .success(.null)])
        _ = RuntimeLoop(api: RuntimeAPIClient(runtimeAPI: runtimeAPI, http: http), logger: quietLogger).run(handler)
        #expect(handler.seen.count == 2)
        #expect(handler.seen.first?.traceEnvironment == trace)
        #expect(handler.seen.count == 2 && handler.seen[1].traceEnvironment == nil)
    }

    @Test func fatalErrorIsLogged() {
        let lines = LineBox()
        let logger = Logger(format: .text, sink: { line in lines.append(line) })
        let http = ScriptedHTTPClient([status(500)])
        _ = RuntimeLoop(api: RuntimeAPIClient(runtimeAPI: runtimeAPI, http: http), logger: logger).run(ScriptedHandler([]))
        #expect(lines.all.contains { $0.hasPrefix("ERROR") })
    }
}

final class LineBox: @unchecked Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}
