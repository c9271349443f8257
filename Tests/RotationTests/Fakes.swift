import AWS
import RotatorJSON
import RotatorTestSupport
@testable import Rotation

/// Where the rotation tests' manual clocks start: an instant in 2023.
let clockStart: Int64 = 1_700_000_000_000

func serviceError(_ code: String, status: Int = 400) -> AWSError {
    .service(operation: "Fake", AWSServiceError(code: code, message: code, httpStatus: status, requestId: nil))
}

/// Secrets Manager's version and stage rules, in memory.
final class FakeSecretsManager: SecretsManagerAPI {
    struct Version { var stages: [String]; var secretString: String? }
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db/app-AbCdEf"
    var rotationEnabled: Bool? = true
    var tags: [String: String] = [:]
    var kmsKeyId: String?
    var versions: [String: Version] = [:]
    var calls: [String] = []
    var rotationTokensSeen: [String?] = []
    var passwordsIssued = 0
    /// Runs once, before the next call of that name: what another invocation does meanwhile.
    var meanwhile: (before: String, run: () -> Void)?

    private func record(_ call: String) {
        calls.append(call)
        if let hook = meanwhile, hook.before == call {
            meanwhile = nil
            hook.run()
        }
    }

    init(current: String, currentVersion: String = "00000000-0000-0000-0000-00000000000a") {
        versions[currentVersion] = Version(stages: ["AWSCURRENT"], secretString: current)
    }

    /// What Secrets Manager does before invoking createSecret: a pending version without a value.
    func startRotation(token: String) {
        versions[token] = Version(stages: ["AWSPENDING"], secretString: nil)
    }

    func stages(of version: String) -> [String] { versions[version]?.stages.sorted() ?? [] }
    func version(holding stage: String) -> String? { versions.first { $0.value.stages.contains(stage) }?.key }

    func describeSecret(_ secretId: String) throws(AWSError) -> SecretDescription {
        calls.append("DescribeSecret")
        guard secretId == arn else { throw serviceError("ResourceNotFoundException") }
        return SecretDescription(arn: arn, rotationEnabled: rotationEnabled,
                                 versionIdsToStages: versions.mapValues(\.stages).filter { !$0.value.isEmpty }, tags: tags,
                                 kmsKeyId: kmsKeyId)
    }

    func getSecretValue(_ secretId: String, _ selector: SecretVersionSelector) throws(AWSError) -> SecretValue {
        calls.append("GetSecretValue")
        let id: String?
        switch selector {
        case .stage(let stage): id = version(holding: stage)
        case let .versionId(v, stage):
            id = versions[v].flatMap { version in stage.map { version.stages.contains($0) } ?? true } == true ? v : nil
        }
        guard let id, let value = versions[id]?.secretString else { throw serviceError("ResourceNotFoundException") }
        return SecretValue(arn: arn, versionId: id, secretString: value)
    }

    func putSecretValue(_ secretId: String, clientRequestToken: String, secretString: String, stages: [String],
                        rotationToken: String?) throws(AWSError) {
        record("PutSecretValue")
        rotationTokensSeen.append(rotationToken)
        if let existing = versions[clientRequestToken]?.secretString {
            if existing != secretString { throw serviceError("ResourceExistsException") }
            return
        }
        for stage in stages { detach(stage) }
        versions[clientRequestToken] = Version(stages: stages, secretString: secretString)
    }

    /// How the next UpdateSecretVersionStage calls fail, one call each: applied or not, the error
    /// answered (applied: an answer lost, then the client's retry refused).
    var stageMoveFailures: [(applied: Bool, error: AWSError)] = []

    func updateSecretVersionStage(_ secretId: String, stage: String, moveTo: String?, removeFrom: String?) throws(AWSError) {
        guard !stageMoveFailures.isEmpty else { return try applyStageMove(stage: stage, moveTo: moveTo, removeFrom: removeFrom) }
        let failure = stageMoveFailures.removeFirst()
        if failure.applied { try applyStageMove(stage: stage, moveTo: moveTo, removeFrom: removeFrom) }
        throw failure.error
    }

    private func applyStageMove(stage: String, moveTo: String?, removeFrom: String?) throws(AWSError) {
        record("UpdateSecretVersionStage")
        if let removeFrom, versions[removeFrom]?.stages.contains(stage) != true {
            throw serviceError("InvalidParameterException")   // "Version stage X not found in version Y"
        }
        if let holder = version(holding: stage), holder != moveTo, holder != removeFrom, moveTo != nil {
            throw serviceError("InvalidParameterException")
        }
        if let removeFrom { versions[removeFrom]?.stages.removeAll { $0 == stage } }
        if let moveTo {
            if stage == "AWSCURRENT", let old = removeFrom {
                detach("AWSPREVIOUS")
                versions[old]?.stages.append("AWSPREVIOUS")
            }
            versions[moveTo]?.stages.removeAll { $0 == "AWSPREVIOUS" }
            versions[moveTo]?.stages.append(stage)
        }
    }

    /// When set, what GetRandomPassword answers, whatever was asked (a service that ignores the request).
    var randomPasswordAnswer: String?

    func getRandomPassword(_ request: PasswordRequest) throws(AWSError) -> String {
        calls.append("GetRandomPassword")
        passwordsIssued += 1
        if let randomPasswordAnswer { return randomPasswordAnswer }
        let allowed = (0x21...0x7E).map { Character(Unicode.Scalar(UInt8($0))) }.filter { !request.excludeCharacters.contains($0) }
        return String((0..<request.length).map { allowed[($0 * 7 + passwordsIssued * 13) % allowed.count] })
    }

    private func detach(_ stage: String) {
        for key in versions.keys { versions[key]?.stages.removeAll { $0 == stage } }
    }
}

/// What these tests ship for postgres and mysql: TestDocument's default document.
extension TestDocument {
    static var shipped: [Engine: ShippedDocument] {
        // The default document is readable: were it not, every test of this target would fail here.
        let document = try! ShippedDocument.of(content: content())
        return [.postgres: document, .mysql: document]
    }
}

/// Database hosts reached through SSM: each holds one password for the login and runs the
/// contract's set/verify against the fake Secrets Manager, with faults to inject.
final class FakeRunCommand: RunCommandAPI, SSMDocumentAPI {
    enum Fault { case loginMissing, noResultLine, neverAnswers, wrongVersionInResult, outputCutBySSM, nonZeroExitAfterResultLine, failedStatusAfterResultLine, echoesHostileNames }
    /// A script's error output that echoes a name the application's login chose: a table whose name
    /// holds a line of its own, terminal escapes (ESC [ and its one-character form U+009B), DEL and
    /// a Unicode line separator.
    static let hostileErrorOutput = "ERROR: permission denied for table \"t\u{1B}[2K\u{9B}31m\u{7F}\u{85}x\"\u{2028}- \(instanceB): outcome=changed"
    struct Host { var password: String?; var fault: Fault? }
    struct Sent { let input: SendCommandInput; let id: String }

    let secrets: FakeSecretsManager
    var hosts: [String: Host] = [:]
    var sent: [Sent] = []
    var cancelled: [(String, [String])] = []
    /// SSM does not know a new invocation at first: ListCommandInvocations leaves it out and
    /// GetCommandInvocation answers InvocationDoesNotExist, this many times per invocation each.
    var notYetPolls = 0
    /// When set, every ListCommandInvocations call fails with it (SSM cannot be asked).
    var followError: AWSError?
    /// The next this many ListCommandInvocations calls, and SendCommand calls, fail with SSM's
    /// ThrottlingException (the account's rate is spent: nothing is listed, nothing is sent).
    var throttledListings = 0
    var throttledSends = 0
    /// ListCommandInvocations calls answered, throttled or not.
    var listingCalls = 0
    /// Runs as each command is sent: what happens elsewhere meanwhile (another copy of a step).
    var whileSending: ((SendCommandInput) -> Void)?
    private var listings: [String: Int] = [:]
    private var polls: [String: Int] = [:]
    private var results: [String: CommandInvocation] = [:]

    init(secrets: FakeSecretsManager) { self.secrets = secrets }

    /// What GetDocument answers for every name: its default version's content and number.
    var documentContent = TestDocument.content()
    var documentVersion = "1"
    /// The name of each GetDocument call.
    var documentReads: [String] = []

    func getDocument(name: String) throws(AWSError) -> SSMDocument? {
        documentReads.append(name)
        return SSMDocument(name: name, documentVersion: documentVersion, documentType: "Command", status: "Active", content: documentContent)
    }

    /// When set, SendCommand fails with it once this many commands were sent.
    var sendingFails: (after: Int, error: AWSError)?

    func sendCommand(_ input: SendCommandInput) throws(AWSError) -> String {
        if throttledSends > 0 {
            throttledSends -= 1
            throw serviceError("ThrottlingException")
        }
        if let sendingFails, sent.count >= sendingFails.after { throw sendingFails.error }
        let id = "cmd-\(sent.count + 1)"
        sent.append(Sent(input: input, id: id))
        whileSending?(input)
        let parameters = Dictionary(uniqueKeysWithValues: input.parameters.map { ($0.0, $0.1.first ?? "") })
        for instance in input.instanceIds {
            results[id + instance] = execute(on: instance, action: parameters["Action"]!, versionId: parameters["VersionId"]!)
        }
        return id
    }

    private func execute(on instance: String, action: String, versionId: String) -> CommandInvocation? {
        guard var host = hosts[instance] else {
            return CommandInvocation(status: "Failed", statusDetails: "Undeliverable", responseCode: -1, standardOutput: "", standardError: "")
        }
        if host.fault == .neverAnswers { return nil }
        let stored = try? secrets.getSecretValue(secrets.arn, .versionId(versionId, stage: nil))
        guard let password = stored?.secretString.flatMap({ try? JSON.parse($0) })?["password"]?.stringValue else {
            return CommandInvocation(status: "Failed", statusDetails: "Failed", responseCode: 4, standardOutput: "", standardError: "cannot read the secret version")
        }
        if host.fault == .echoesHostileNames {
            return CommandInvocation(status: "Failed", statusDetails: "Failed", responseCode: 6, standardOutput: "",
                                     standardError: FakeRunCommand.hostileErrorOutput)
        }
        if host.fault == .loginMissing {
            return CommandInvocation(status: "Failed", statusDetails: "Failed", responseCode: 3, standardOutput: "", standardError: "login app does not exist")
        }
        var outcome: String
        switch action {
        case "set":
            outcome = host.password == password ? "unchanged" : "changed"
            host.password = password
            hosts[instance] = host
        default:
            guard host.password == password else {
                return CommandInvocation(status: "Failed", statusDetails: "Failed", responseCode: 5, standardOutput: "", standardError: "password refused")
            }
            outcome = "verified"
        }
        let version = host.fault == .wrongVersionInResult ? String(repeating: "f", count: 32) : versionId
        let line = host.fault == .noResultLine ? "all good" : "ROTATOR-RESULT action=\(action) version=\(version) outcome=\(outcome)"
        if host.fault == .outputCutBySSM {   // a chatty host: SSM keeps 24,000 characters, the marker last
            let kept = String(String(repeating: "chatter\n", count: 3_000).prefix(24_000 - 20)) + "--output truncated--"
            return CommandInvocation(status: "Success", statusDetails: "Success", responseCode: 0, standardOutput: kept, standardError: "")
        }
        let status = host.fault == .failedStatusAfterResultLine ? "Failed" : "Success"
        return CommandInvocation(status: status, statusDetails: status, responseCode: host.fault == .nonZeroExitAfterResultLine ? 3 : 0,
                                 standardOutput: "working\n\(line)\n", standardError: "")
    }

    /// GetCommandInvocation calls, per instance id.
    var invocationReads: [String: Int] = [:]
    /// GetCommandInvocation answers InProgress this many times per invocation after ListCommandInvocations
    /// already shows it finished (SSM's views are only eventually consistent).
    var staleReads = 0

    func getCommandInvocation(commandId: String, instanceId: String) throws(AWSError) -> CommandInvocation {
        let key = commandId + instanceId
        polls[key, default: 0] += 1
        invocationReads[instanceId, default: 0] += 1
        if polls[key]! <= notYetPolls { throw serviceError("InvocationDoesNotExist") }
        guard let result = results[key], polls[key]! > notYetPolls + staleReads else {
            return CommandInvocation(status: "InProgress", statusDetails: "InProgress", responseCode: -1, standardOutput: "", standardError: "")
        }
        return result
    }

    func listCommandInvocations(commandId: String) throws(AWSError) -> [String: String] {
        listingCalls += 1
        if let followError { throw followError }
        if throttledListings > 0 {
            throttledListings -= 1
            throw serviceError("ThrottlingException")
        }
        listings[commandId, default: 0] += 1
        guard listings[commandId]! > notYetPolls, let sent = sent.first(where: { $0.id == commandId }) else { return [:] }
        var statuses: [String: String] = [:]
        for instance in sent.input.instanceIds { statuses[instance] = results[commandId + instance]?.status ?? "InProgress" }
        return statuses
    }

    func cancelCommand(commandId: String, instanceIds: [String]) throws(AWSError) {
        cancelled.append((commandId, instanceIds))
    }
}

final class FakeNotifications: NotificationAPI {
    var published: [(topicArn: String, subject: String, message: String)] = []
    func publish(topicArn: String, subject: String, message: String) throws(AWSError) {
        published.append((topicArn, subject, message))
    }
}
