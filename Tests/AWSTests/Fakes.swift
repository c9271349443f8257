import AWS
import HTTP
import RotatorJSON
import RotatorTestSupport
import Testing

/// 2015-08-30T12:36:00Z, the instant of the official SigV4 test suite, in milliseconds.
let t0: Int64 = 1_440_938_160_000

let baseEnvironment: [String: String] = [
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "session-token-1",
]

func ok(_ body: String, headers: [(name: String, value: String)] = [("Content-Type", "application/x-amz-json-1.1")]) -> ScriptedHTTPClient.Step {
    .respond(HTTPResponse(status: 200, headers: headers, body: Array(body.utf8)))
}

func answer(_ status: Int, _ body: String, headers: [(name: String, value: String)] = []) -> ScriptedHTTPClient.Step {
    .respond(HTTPResponse(status: status, headers: headers, body: Array(body.utf8)))
}

/// An AWS JSON 1.1 error answer.
func jsonError(_ status: Int, _ type: String, message: String = "failed", requestId: String = "req-1") -> ScriptedHTTPClient.Step {
    answer(status, JSON.object([("__type", .string(type)), ("message", .string(message))]).serialized,
           headers: [("x-amzn-RequestId", requestId), ("Content-Type", "application/x-amz-json-1.1")])
}

func transportFailure(_ code: Int = 7, timeout: Bool = false) -> ScriptedHTTPClient.Step {
    .fail(TransportError(code: code, message: "Couldn't connect to server", isTimeout: timeout))
}

/// One fake world: a clock, an HTTP script and a deadline.
final class Harness {
    let clock: ManualClock
    let http: ScriptedHTTPClient
    let deadline: Int64?

    init(_ script: [ScriptedHTTPClient.Step], latencyMilliseconds: Int64 = 0, deadline: Int64? = nil, now: Int64 = t0) {
        clock = ManualClock(nowMilliseconds: now)
        http = ScriptedHTTPClient(script, clock: clock, latencyMilliseconds: latencyMilliseconds)
        self.deadline = deadline
    }

    func client(_ service: AWSService, environment: [String: String] = baseEnvironment,
                retryPolicy: RetryPolicy = RetryPolicy(), random: Double = 0.5,
                deadlineReserveMilliseconds: Int64 = AWSServiceClient.defaultDeadlineReserveMilliseconds) throws -> AWSServiceClient {
        AWSServiceClient(service: service, configuration: try AWSConfiguration(environment: environment), http: http,
                         clock: clock, deadlineMilliseconds: deadline, retryPolicy: retryPolicy,
                         deadlineReserveMilliseconds: deadlineReserveMilliseconds, random: { random })
    }

    func secretsManager(environment: [String: String] = baseEnvironment, random: Double = 0.5) throws -> SecretsManagerClient {
        SecretsManagerClient(try client(.secretsManager, environment: environment, random: random))
    }

    func ssm(environment: [String: String] = baseEnvironment) throws -> SSMClient {
        SSMClient(try client(.ssm, environment: environment))
    }

    func sns(environment: [String: String] = baseEnvironment) throws -> SNSClient {
        SNSClient(try client(.sns, environment: environment))
    }

    var requests: [HTTPRequest] { http.requests }
}

extension HTTPRequest {
    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    func headerCount(_ name: String) -> Int {
        headers.filter { $0.name.lowercased() == name.lowercased() }.count
    }

    var bodyJSON: JSON? { try? JSON.parse(body) }
    var bodyText: String { String(decoding: body, as: UTF8.self) }

    /// The `SignedHeaders=` list of the Authorization header.
    var signedHeaders: [String]? {
        guard let authorization = header("Authorization"), let start = authorization.firstRange(of: "SignedHeaders=") else { return nil }
        return authorization[start.upperBound...].prefix { $0 != "," }.split(separator: ";").map(String.init)
    }
}
