import HTTP
import SigV4

/// Where and as whom the function talks to AWS, read once from the Lambda environment.
public struct AWSConfiguration: Sendable {
    public let region: String
    public let credentials: Credentials
    private let environment: [String: String]

    public enum Problem: Error, CustomStringConvertible, Equatable {
        case missing(String)
        case invalidEndpoint(String)
        public var description: String {
            switch self {
            case .missing(let name): return "environment variable \(name) is not set"
            case .invalidEndpoint(let url): return "endpoint \(url) is not an http(s)://host[:port][/path] URL"
            }
        }
    }

    public init(environment: [String: String]) throws(Problem) {
        func required(_ name: String) throws(Problem) -> String {
            guard let value = environment[name], !value.isEmpty else { throw .missing(name) }
            return value
        }
        region = try required("AWS_REGION")
        credentials = Credentials(
            accessKeyId: try required("AWS_ACCESS_KEY_ID"),
            secretAccessKey: try required("AWS_SECRET_ACCESS_KEY"),
            sessionToken: environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 })
        self.environment = environment
        for service in AWSService.allCases where URLParts(endpoint(for: service)) == nil {
            throw .invalidEndpoint(endpoint(for: service))
        }
    }

    /// The endpoint as every AWS SDK resolves it: the service's own variable, then the global one,
    /// then the regional default.
    public func endpoint(for service: AWSService) -> String {
        for name in ["AWS_ENDPOINT_URL_" + service.endpointVariableSuffix, "AWS_ENDPOINT_URL"] {
            if let url = environment[name], !url.isEmpty { return url }
        }
        let domain = region.hasPrefix("cn-") ? "amazonaws.com.cn" : "amazonaws.com"
        return "https://\(service.endpointPrefix).\(region).\(domain)"
    }
}

/// The services the function calls (Secrets Manager, SSM, SNS) and those the operator commands
/// read as well (Lambda, CloudWatch Logs), with the names each is known by.
public enum AWSService: Sendable, CaseIterable {
    case secretsManager, ssm, sns, lambda, logs

    var endpointPrefix: String {
        switch self {
        case .secretsManager: return "secretsmanager"
        case .ssm: return "ssm"
        case .sns: return "sns"
        case .lambda: return "lambda"
        case .logs: return "logs"
        }
    }

    var signingName: String { endpointPrefix }

    var endpointVariableSuffix: String {
        switch self {
        case .secretsManager: return "SECRETS_MANAGER"
        case .ssm: return "SSM"
        case .sns: return "SNS"
        case .lambda: return "LAMBDA"
        case .logs: return "CLOUDWATCH_LOGS"
        }
    }
}
