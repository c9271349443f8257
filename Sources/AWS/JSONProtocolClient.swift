import HTTP
import RotatorJSON

/// AWS JSON 1.1, spoken by Secrets Manager (`secretsmanager.<Op>`) and SSM (`AmazonSSM.<Op>`).
struct JSONProtocolClient {
    let client: AWSServiceClient
    let targetPrefix: String

    func call(_ operation: String, _ input: JSON) throws(AWSError) -> JSON {
        let response = try client.perform(
            operation: operation, contentType: "application/x-amz-json-1.1",
            extraHeaders: [("X-Amz-Target", "\(targetPrefix).\(operation)")],
            body: Array(input.serialized.utf8), parseError: JSONProtocolClient.parseError)
        if response.body.isEmpty { return .object([]) }
        do {
            return try JSON.parse(response.body)
        } catch {
            throw .malformedResponse(operation: operation, reason: error.description)
        }
    }

    /// Calls `operation` with `input` for its first page, then again with each `NextToken` it answers
    /// until it answers none (or an empty one), handing `eachPage` every answer. A token it has
    /// answered before is refused rather than followed: the listing would go round forever, every
    /// page's entries kept, in a command that has no deadline but the operator's patience.
    func callEveryPage(_ operation: String, _ input: [(String, JSON)], eachPage: (JSON) throws(AWSError) -> Void) throws(AWSError) {
        var seen: Set<String> = []
        var nextToken: String?
        repeat {
            let out = try call(operation, .object(input + (nextToken.map { [("NextToken", .string($0))] } ?? [])))
            try eachPage(out)
            nextToken = out["NextToken"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            if let nextToken, !seen.insert(nextToken).inserted {
                throw .malformedResponse(operation: operation, reason: "a NextToken it had already answered: its pages go round in a circle")
            }
        } while nextToken != nil
    }

    /// `__type` may read `prefix#Code` or `Code:uri`; the code is what lies between.
    static func parseError(_ response: HTTPResponse) -> AWSServiceError {
        let body = try? JSON.parse(response.body)
        var code = body?["__type"]?.stringValue ?? response.header("x-amzn-ErrorType") ?? ""
        if let colon = code.firstIndex(of: ":") { code = String(code[..<colon]) }
        if let hash = code.lastIndex(of: "#") { code = String(code[code.index(after: hash)...]) }
        if code.isEmpty { code = "HTTP\(response.status)" }
        let message = body?["message"]?.stringValue ?? body?["Message"]?.stringValue ?? ""
        return AWSServiceError(code: code, message: message, httpStatus: response.status,
                               requestId: response.header("x-amzn-RequestId"))
    }
}

/// AWS JSON timestamps are seconds since the epoch, with a fraction: `1.523477145713E9`.
func epochMilliseconds(_ value: JSON?) -> Int64? {
    guard case .number(let text)? = value, let seconds = Double(text), seconds.isFinite else { return nil }
    return Int64((seconds * 1000).rounded())
}
