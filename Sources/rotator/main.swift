import AWS
import HTTP
import LambdaRuntime
import RotatorLogging
import Operations
import Rotation
#if canImport(Glibc)
import Glibc
#endif

/// The process environment, as Lambda set it.
func processEnvironment() -> [String: String] {
    var result: [String: String] = [:]
    var entry = environ
    while let pointer = entry.pointee {
        let text = String(cString: pointer)
        if let eq = text.firstIndex(of: "=") {
            result[String(text[..<eq])] = String(text[text.index(after: eq)...])
        }
        entry += 1
    }
    return result
}

let environment = processEnvironment()
let caBundle = CurlHTTPClient.defaultCABundle(environment: environment, fileExists: { access($0, R_OK) == 0 })

// With arguments it is the operator's tool (`rotator status --secret-id ...`); Lambda starts it without.
if CommandLine.arguments.count > 1 {
    exit(Operator.main(arguments: Array(CommandLine.arguments.dropFirst()), environment: environment,
                       http: CurlHTTPClient(caBundlePath: caBundle), clock: SystemClock()))
}

let logger = Logger(environment: environment)
guard let runtimeAPI = environment["AWS_LAMBDA_RUNTIME_API"], !runtimeAPI.isEmpty else {
    logger.error("AWS_LAMBDA_RUNTIME_API is not set: this program runs inside AWS Lambda (or the local stack); "
        + "run `rotator --help` for the operator commands")
    exit(1)
}
let http = CurlHTTPClient(caBundlePath: caBundle)
let runtime = RuntimeAPIClient(runtimeAPI: runtimeAPI, http: http)
let clock = SystemClock()

let handler: RotationHandler
do {
    let functionEnvironment = try FunctionEnvironment(environment: environment)
    let aws = try AWSConfiguration(environment: environment)
    // A step's own calls stop early enough that a failure can still be alerted and reported.
    func client(_ service: AWSService, reserveMilliseconds: Int64) -> AWSServiceClient {
        AWSServiceClient(service: service, configuration: aws, http: http, clock: clock,
                         deadlineReserveMilliseconds: reserveMilliseconds)
    }
    let secretsManager = client(.secretsManager, reserveMilliseconds: Rotator.reserveMilliseconds)
    let ssm = client(.ssm, reserveMilliseconds: Rotator.reserveMilliseconds)
    let sns = client(.sns, reserveMilliseconds: AWSServiceClient.defaultDeadlineReserveMilliseconds)
    // One per process: a document version is read and proven once per container, then every
    // command of every invocation names it (DocumentVerifier).
    let documents = DocumentVerifier()
    handler = RotationHandler(
        rotator: { deadline in
            Rotator(secrets: SecretsManagerClient(secretsManager.until(deadline)),
                    hosts: HostRunner(ssm: SSMClient(ssm.until(deadline)), documents: functionEnvironment.documents, verifier: documents,
                                      clock: clock, pollInitialMilliseconds: functionEnvironment.hostPollMilliseconds),
                    alerts: AlertPublisher(sns: SNSClient(sns.until(deadline)), topicArn: functionEnvironment.alertTopicArn),
                    passwordPolicy: functionEnvironment.passwordPolicy, clock: clock, deadlineMilliseconds: deadline,
                    loginTag: functionEnvironment.loginTag, secretKeyArn: functionEnvironment.secretKeyArn)
        },
        clock: clock, metrics: StepMetrics(clock: clock))
} catch {
    logger.error("configuration unusable", ("reason", "\(error)"))
    do {
        try runtime.initFailed(FunctionError(errorType: "Configuration", errorMessage: "\(error)"))
    } catch {
        logger.error("could not report the init error", ("reason", error.description))
    }
    exit(1)
}

_ = RuntimeLoop(api: runtime, logger: logger).run(handler)
exit(2)
