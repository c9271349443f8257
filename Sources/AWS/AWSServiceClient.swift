import HTTP
import RotatorJSON
import SigV4

/// Sends one signed request to one AWS service with the standard retry mode, never past its
/// deadline. The two wire protocols (JSON 1.1 and Query) build on `perform`.
public final class AWSServiceClient {
    let service: AWSService
    let endpoint: String
    private let endpointParts: URLParts
    private let signer: SigV4Signer
    private let http: HTTPClient
    private let clock: MillisecondClock
    /// When this client's calls must be over (epoch milliseconds): the Lambda invocation's end for
    /// the function, whose clients are made per invocation with `until(_:)`; none for the operator
    /// commands, whose calls have only their attempt timeouts and retries.
    private let deadlineMilliseconds: Int64?
    private let retryPolicy: RetryPolicy
    private let random: () -> Double
    private let deadlineReserveMilliseconds: Int64

    /// Each attempt waits at most this long, so one slow answer leaves time for a retry.
    static let attemptTimeoutMilliseconds: Int64 = 20_000
    /// Time kept back from the deadline by default: enough to report the result to the Runtime API.
    public static let defaultDeadlineReserveMilliseconds: Int64 = 1_000

    /// `deadlineReserveMilliseconds`: no attempt runs, and no retry waits, into this much time
    /// before the deadline; callers that must still do something after a failed call (alert,
    /// report) keep back more.
    public init(service: AWSService, configuration: AWSConfiguration, http: HTTPClient, clock: MillisecondClock,
                deadlineMilliseconds: Int64? = nil, retryPolicy: RetryPolicy = RetryPolicy(),
                deadlineReserveMilliseconds: Int64 = AWSServiceClient.defaultDeadlineReserveMilliseconds,
                random: @escaping () -> Double = { Double.random(in: 0..<1) }) {
        self.service = service
        endpoint = configuration.endpoint(for: service)
        // AWSConfiguration refuses endpoints that do not parse.
        endpointParts = URLParts(endpoint)!
        signer = SigV4Signer(credentials: configuration.credentials, region: configuration.region, service: service.signingName)
        self.http = http
        self.clock = clock
        self.deadlineMilliseconds = deadlineMilliseconds
        self.retryPolicy = retryPolicy
        self.random = random
        self.deadlineReserveMilliseconds = deadlineReserveMilliseconds
    }

    private init(copying other: AWSServiceClient, deadlineMilliseconds: Int64?) {
        service = other.service
        endpoint = other.endpoint
        endpointParts = other.endpointParts
        signer = other.signer
        http = other.http
        clock = other.clock
        self.deadlineMilliseconds = deadlineMilliseconds
        retryPolicy = other.retryPolicy
        random = other.random
        deadlineReserveMilliseconds = other.deadlineReserveMilliseconds
    }

    /// The same client, its calls bounded by `deadlineMilliseconds` instead.
    public func until(_ deadlineMilliseconds: Int64?) -> AWSServiceClient {
        AWSServiceClient(copying: self, deadlineMilliseconds: deadlineMilliseconds)
    }

    /// Time left before the deadline, less the reserve; nil without a deadline.
    private var usableMilliseconds: Int64? {
        deadlineMilliseconds.map { $0 - clock.nowMilliseconds - deadlineReserveMilliseconds }
    }

    /// Sends `body` to the endpoint's path (plus `resourcePath`, already percent-encoded, for REST
    /// APIs), signed afresh for every attempt, and returns the first 2xx response. `parseError` turns
    /// a non-2xx body into the service's error.
    func perform(operation: String, method: String = "POST", resourcePath: String = "", contentType: String,
                 extraHeaders: [(name: String, value: String)], body: [UInt8],
                 parseError: (HTTPResponse) -> AWSServiceError) throws(AWSError) -> HTTPResponse {
        var attempt = 1
        while true {
            let remaining = usableMilliseconds
            if let remaining, remaining <= 0 { throw .deadline(operation: operation) }
            let timeout = min(remaining ?? AWSServiceClient.attemptTimeoutMilliseconds, AWSServiceClient.attemptTimeoutMilliseconds)
            let request = signedRequest(method: method, resourcePath: resourcePath, contentType: contentType,
                                        extraHeaders: extraHeaders, body: body, timeoutMilliseconds: Int(timeout))
            let failure: AWSError
            switch Result(catching: { () throws(TransportError) in try http.send(request) }) {
            case .success(let response):
                if (200..<300).contains(response.status) { return response }
                let error = parseError(response)
                guard retryPolicy.isRetryable(error) else { throw .service(operation: operation, error) }
                failure = .service(operation: operation, error)
            case .failure(let error):
                failure = .transport(operation: operation, error)
            }
            guard attempt < retryPolicy.maxAttempts else { throw failure }
            let delay = retryPolicy.backoffMilliseconds(afterAttempt: attempt, random: random())
            if let left = usableMilliseconds, left <= delay { throw failure }
            clock.sleep(milliseconds: delay)
            attempt += 1
        }
    }

    private func signedRequest(method: String, resourcePath: String, contentType: String,
                               extraHeaders: [(name: String, value: String)], body: [UInt8],
                               timeoutMilliseconds: Int) -> HTTPRequest {
        let headers = [("Host", endpointParts.hostHeader), ("Content-Type", contentType)] + extraHeaders
        let base = endpointParts.path.hasSuffix("/") ? String(endpointParts.path.dropLast()) : endpointParts.path
        let path = resourcePath.isEmpty ? endpointParts.path : base + resourcePath
        let url = resourcePath.isEmpty ? endpoint : (endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint) + resourcePath
        let toSign = SigningRequest(method: method, path: path, query: [], headers: headers, body: body)
        let signed = signer.sign(toSign, at: AmzTime(epochSeconds: Int(clock.nowMilliseconds / 1000)))
        return HTTPRequest(method: method, url: url, headers: signed, body: body, timeoutMilliseconds: timeoutMilliseconds)
    }
}
