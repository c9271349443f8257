import AWS
import HTTP
import Rotation

/// The AWS clients of one operator command, built from the process environment as every AWS SDK
/// reads it: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (or
/// `AWS_DEFAULT_REGION`), `AWS_ENDPOINT_URL[_<SERVICE>]`. Profiles and the shared config and
/// credentials files are not read: `make status|doctor|cancel` exports a profile's credentials
/// through the AWS CLI first.
public struct OperatorServices {
    public let secrets: SecretsManagerAPI & SecretVersionsAPI
    public let ssm: RunCommandAPI & SSMInventoryAPI
    public let functions: FunctionConfigurationAPI
    public let logs: LogSearchAPI
    public let clock: MillisecondClock
    /// What the operator commands accept as each engine's document (generated from template.yaml;
    /// unit tests put their own here).
    var shipped: [Engine: ShippedDocument] = ShippedDocument.byEngine

    public init(secrets: SecretsManagerAPI & SecretVersionsAPI, ssm: RunCommandAPI & SSMInventoryAPI,
                functions: FunctionConfigurationAPI, logs: LogSearchAPI, clock: MillisecondClock) {
        self.secrets = secrets
        self.ssm = ssm
        self.functions = functions
        self.logs = logs
        self.clock = clock
    }

    public static func fromEnvironment(_ environment: [String: String], http: HTTPClient, clock: MillisecondClock) throws(AWSConfiguration.Problem) -> OperatorServices {
        var environment = environment
        if environment["AWS_REGION", default: ""].isEmpty, let region = environment["AWS_DEFAULT_REGION"], !region.isEmpty {
            environment["AWS_REGION"] = region
        }
        let configuration = try AWSConfiguration(environment: environment)
        // No invocation deadline outside Lambda: each call has its own attempt timeouts and retries.
        func client(_ service: AWSService) -> AWSServiceClient {
            AWSServiceClient(service: service, configuration: configuration, http: http, clock: clock, deadlineMilliseconds: nil)
        }
        return OperatorServices(secrets: SecretsManagerClient(client(.secretsManager)), ssm: SSMClient(client(.ssm)),
                                functions: LambdaClient(client(.lambda)), logs: CloudWatchLogsClient(client(.logs)), clock: clock)
    }

    /// The configuration of the secret's rotation function. Asked for by name: Secrets Manager only
    /// invokes a function of the secret's own account and region, and a name needs no
    /// percent-encoding in the REST path (an ARN's colons do).
    func rotationFunction(_ functionArn: String) throws(AWSError) -> FunctionSettings {
        let name = functionArn.split(separator: ":", omittingEmptySubsequences: false)
            .drop { $0 != "function" }.dropFirst().first.map(String.init) ?? functionArn
        return try functions.getFunctionConfiguration(name)
    }

    /// A verifier of documents against `shipped`, for one command's run.
    func documentVerifier() -> DocumentVerifier { DocumentVerifier(shipped: shipped) }

    /// The rotation function's SSM documents, from its environment (the same variables it reads).
    func documents(of function: FunctionSettings) -> [Engine: String] {
        var documents: [Engine: String] = [:]
        for engine in Engine.allCases {
            if let name = function.environment[engine.documentVariable], !name.isEmpty { documents[engine] = name }
        }
        return documents
    }
}
