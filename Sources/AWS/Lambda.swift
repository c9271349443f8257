import HTTP
import SigV4
import RotatorJSON

/// The parts of a Lambda function's configuration the operator commands read.
public struct FunctionSettings: Sendable, Equatable {
    public let functionArn: String
    public let environment: [String: String]
    /// Where the function's log lines go: its `LoggingConfig.LogGroup`, else Lambda's default.
    public let logGroup: String

    public init(functionArn: String, environment: [String: String], logGroup: String) {
        self.functionArn = functionArn
        self.environment = environment
        self.logGroup = logGroup
    }
}

public protocol FunctionConfigurationAPI: AnyObject {
    /// `functionName`: a name or an ARN.
    func getFunctionConfiguration(_ functionName: String) throws(AWSError) -> FunctionSettings
}

/// Lambda's REST API (`GET /2015-03-31/functions/{name}/configuration`).
public final class LambdaClient: FunctionConfigurationAPI {
    private let client: AWSServiceClient

    public init(_ client: AWSServiceClient) {
        self.client = client
    }

    public func getFunctionConfiguration(_ functionName: String) throws(AWSError) -> FunctionSettings {
        let operation = "GetFunctionConfiguration"
        let response = try client.perform(
            operation: operation, method: "GET",
            resourcePath: "/2015-03-31/functions/\(URIEncoding.encode(functionName, encodeSlash: true))/configuration",
            contentType: "application/json", extraHeaders: [], body: [], parseError: LambdaClient.parseError)
        let out: JSON
        do {
            out = try JSON.parse(response.body)
        } catch {
            throw .malformedResponse(operation: operation, reason: error.description)
        }
        guard let arn = out["FunctionArn"]?.stringValue, let name = out["FunctionName"]?.stringValue else {
            throw .malformedResponse(operation: operation, reason: "no FunctionArn or FunctionName")
        }
        var environment: [String: String] = [:]
        for (key, value) in out["Environment"]?["Variables"]?.objectValue ?? [] {
            if let text = value.stringValue { environment[key] = text }
        }
        let logGroup = out["LoggingConfig"]?["LogGroup"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } ?? "/aws/lambda/\(name)"
        return FunctionSettings(functionArn: arn, environment: environment, logGroup: logGroup)
    }

    /// REST errors name their code in `x-amzn-ErrorType` and the body's `Type`/`__type`.
    static func parseError(_ response: HTTPResponse) -> AWSServiceError {
        JSONProtocolClient.parseError(response)
    }
}
