import AWS
import RotatorJSON
import Rotation
import RotatorTestSupport
import Testing
@testable import Operations

/// A secret with a stuck rotation, and hosts that accept a given version's password or not.
final class StuckWorld: SecretsManagerAPI, SecretVersionsAPI, RunCommandAPI, SSMInventoryAPI, LogSearchAPI, FunctionConfigurationAPI {
    let secretArn = arn
    var stages = [currentId: ["AWSCURRENT"], pendingId: ["AWSPENDING"]]
    var pendingCreated: Int64 = now - 60 * minute
    /// The instances whose login accepts AWSCURRENT's password.
    var accepting: Set<String> = ["i-0123456789abcdef0"]
    var calls: [String] = []
    let clock = ManualClock(nowMilliseconds: now)

    func value(_ password: String) -> String {
        #"{"engine":"postgres","host":"db","username":"app","password":"\#(password)","instanceIds":["i-0123456789abcdef0"]}"#
    }

    func describeSecret(_ secretId: String) throws(AWSError) -> SecretDescription {
        calls.append("DescribeSecret")
        return SecretDescription(arn: secretArn, rotationEnabled: true, versionIdsToStages: stages.filter { !$0.value.isEmpty },
                                 rotationLambdaArn: function)
    }
    func listSecretVersionIds(_ secretId: String) throws(AWSError) -> [SecretVersionEntry] {
        stages.map { SecretVersionEntry(versionId: $0.key, stages: $0.value, createdMilliseconds: $0.key == pendingId ? pendingCreated : now - 86_400_000) }
    }
    func listSecrets(taggedWith key: String, value: String) throws(AWSError) -> [SecretDescription] {
        Issue.record("status of one secret, doctor and cancel list no secrets")
        return []
    }
    func getSecretValue(_ secretId: String, _ selector: SecretVersionSelector) throws(AWSError) -> SecretValue {
        switch selector {
        case .stage: return SecretValue(arn: secretArn, versionId: currentId, secretString: value("current-secret-password"))
        case .versionId(let id, _): return SecretValue(arn: secretArn, versionId: id, secretString: value("pending-secret-password"))
        }
    }
    func putSecretValue(_ secretId: String, clientRequestToken: String, secretString: String, stages: [String], rotationToken: String?) throws(AWSError) {
        Issue.record("cancel never writes a value")
    }
    func updateSecretVersionStage(_ secretId: String, stage: String, moveTo: String?, removeFrom: String?) throws(AWSError) {
        calls.append(moveTo.map { "UpdateSecretVersionStage \(stage) to \($0)" } ?? "UpdateSecretVersionStage \(stage) from \(removeFrom ?? "-")")
        if let removeFrom { stages[removeFrom]?.removeAll { $0 == stage } }
        if let moveTo { stages[moveTo, default: []].append(stage) }
        if stage == "AWSPENDING", removeFrom != nil, let hook = meanwhile { meanwhile = nil; hook() }
    }
    /// Runs once, right after AWSPENDING is removed: what another invocation does meanwhile.
    var meanwhile: (() -> Void)?
    /// The action of the last command sent, and whether the hosts answer a `set` at all.
    var lastAction = "verify"
    /// Runs once, as the proof is sent: the rotation moving on meanwhile.
    var onVerify: (() -> Void)?
    var setAnswers = true
    func getRandomPassword(_ request: PasswordRequest) throws(AWSError) -> String { "" }

    /// Each SendCommand's document and the version it named ("-" for none): `DocP@1`.
    var sentDocuments: [String] = []

    func sendCommand(_ input: SendCommandInput) throws(AWSError) -> String {
        sentDocuments.append("\(input.documentName)@\(input.documentVersion ?? "-")")
        calls.append("SendCommand \(input.parameters.map { "\($0.0)=\($0.1.joined())" }.joined(separator: " "))")
        lastAction = input.parameters.first { $0.0 == "Action" }?.1.first ?? ""
        if lastAction == "verify", let hook = onVerify { onVerify = nil; hook() }
        // A set of AWSCURRENT puts its password back on every host that answers.
        if lastAction == "set" && setAnswers { accepting.insert("i-0123456789abcdef0") }
        return "cmd-1"
    }
    func listCommandInvocations(commandId: String) throws(AWSError) -> [String: String] {
        if lastAction == "set" { return ["i-0123456789abcdef0": setAnswers ? "Success" : "Failed"] }
        return ["i-0123456789abcdef0": accepting.contains("i-0123456789abcdef0") ? "Success" : "Failed"]
    }
    func getCommandInvocation(commandId: String, instanceId: String) throws(AWSError) -> CommandInvocation {
        if lastAction == "set" {
            return setAnswers
                ? CommandInvocation(status: "Success", statusDetails: "Success", responseCode: 0,
                                    standardOutput: "ROTATOR-RESULT action=set version=\(currentId) outcome=unchanged\n", standardError: "")
                : CommandInvocation(status: "Failed", statusDetails: "Failed", responseCode: 6, standardOutput: "",
                                    standardError: "the host could not be administered")
        }
        return accepting.contains(instanceId)
            ? CommandInvocation(status: "Success", statusDetails: "Success", responseCode: 0,
                                standardOutput: "ROTATOR-RESULT action=verify version=\(currentId) outcome=verified\n", standardError: "")
            : CommandInvocation(status: "Failed", statusDetails: "Failed", responseCode: 5, standardOutput: "",
                                standardError: "login refused")
    }
    func cancelCommand(commandId: String, instanceIds: [String]) throws(AWSError) {}
    func describeInstanceInformation(instanceIds: [String]) throws(AWSError) -> [ManagedInstance] { instances }
    func documentStatus(name: String) throws(AWSError) -> String? { "Active" }
    /// What GetDocument returns for the function's document: the shipped one unless a test changes it.
    var documentContent = TestDocument.content()
    /// The DocumentVersion GetDocument answers (the default version's number).
    var documentVersion: String? = "1"
    /// What DescribeInstanceInformation knows (doctor sends commands only to Online instances).
    var instances: [ManagedInstance] = []
    func getDocument(name: String) throws(AWSError) -> SSMDocument? {
        calls.append("GetDocument \(name)")
        return SSMDocument(name: name, documentVersion: documentVersion, documentType: "Command", status: "Active", content: documentContent)
    }
    /// The function's step lines in its log, as StepMetrics wrote them.
    let log = LogGroupFake()
    /// A step of the pending version that finished at `at` (a failure with `failure`), as the function logs it.
    func recordStep(_ step: RotationStep, at: Int64, failure: RotationError? = nil) {
        let lines = LogBuffer()
        StepMetrics(clock: ManualClock(nowMilliseconds: at), sink: { lines.append($0) })
            .stepFinished(RotationEvent(step: step, secretId: secretArn, token: pendingId, rotationToken: nil),
                          startedMilliseconds: at - 1_000, failure: failure)
        log.events += lines.lines.map { LogEvent(timestampMilliseconds: at, message: $0) }
    }
    func filterLogEvents(logGroup: String, member: String, equals value: String, startMilliseconds: Int64,
                         limit: Int) throws(AWSError) -> LogSearch {
        log.search(member: member, equals: value, startMilliseconds: startMilliseconds, limit: limit)
    }
    func getFunctionConfiguration(_ functionName: String) throws(AWSError) -> FunctionSettings {
        FunctionSettings(functionArn: function, environment: ["POSTGRES_DOCUMENT": "DocP"], logGroup: "/aws/lambda/rotator")
    }

    var services: OperatorServices {
        var services = OperatorServices(secrets: self, ssm: self, functions: self, logs: self, clock: clock)
        services.shipped = TestDocument.shipped
        return services
    }
}

final class LogBuffer: @unchecked Sendable {
    var lines: [String] = []
    func append(_ line: String) { lines.append(line) }
}

final class Captured: @unchecked Sendable {
    var out = ""
    var err = ""
    func console(json: Bool) -> Console {
        Console(json: json, progressIsTerminal: false, writeOut: { self.out += $0 }, writeErr: { self.err += $0 })
    }
}

@Suite struct CancelTests {
    @Test func cancelRemovesPendingOnlyAfterEveryHostLoggedInWithCurrent() throws {
        let world = StuckWorld()
        let output = Captured()
        let code = Operator.run(try OperatorArguments.parse(["cancel", "--secret-id", "db/app"]), services: world.services,
                                console: output.console(json: false))
        #expect(code == 0)
        #expect(world.calls.contains("SendCommand Action=verify SecretId=\(arn) VersionId=\(currentId)"))
        #expect(Array(world.calls.filter { $0.hasPrefix("SendCommand") || $0.hasPrefix("Update") }.suffix(2)) == [
            "UpdateSecretVersionStage AWSPENDING from \(pendingId)",
            "SendCommand Action=set SecretId=\(arn) VersionId=\(currentId)"])
        #expect(world.stages[pendingId] == [])
        #expect(output.out.contains("Removed AWSPENDING from version \(pendingId)"))
        #expect(!(output.out + output.err).contains("secret-password"))
    }

    @Test func aRefusingHostChangesNothing() throws {
        let world = StuckWorld()
        world.accepting = []
        let output = Captured()
        let code = Operator.run(try OperatorArguments.parse(["cancel", "--secret-id", "db/app", "--json"]), services: world.services,
                                console: output.console(json: true))
        #expect(code == 1)
        #expect(!world.calls.contains { $0.hasPrefix("UpdateSecretVersionStage") })
        #expect(world.stages[pendingId] == ["AWSPENDING"])
        let result = try JSON.parse(output.out)
        #expect(result["cancelled"] == .bool(false))
        #expect(result["hosts"]?.arrayValue?.first?["accepted"] == .bool(false))
        #expect(result["hosts"]?.arrayValue?.first?["detail"]?.stringValue?.contains("login refused") == true)
    }

    @Test func aRotationThatMayBeRunningIsLeftAloneUnlessForced() throws {
        let world = StuckWorld()
        world.pendingCreated = now - 2 * minute
        let output = Captured()
        let code = Operator.run(try OperatorArguments.parse(["cancel", "--secret-id", "db/app"]), services: world.services,
                                console: output.console(json: false))
        #expect(code == 1)
        #expect(!world.calls.contains { $0.hasPrefix("SendCommand") || $0.hasPrefix("UpdateSecretVersionStage") })
        #expect(output.out.contains("--force"))
        let forced = Operator.run(try OperatorArguments.parse(["cancel", "--force", "--secret-id", "db/app"]), services: world.services,
                                  console: Captured().console(json: false))
        #expect(forced == 0)
        #expect(world.stages[pendingId] == [])
    }

    @Test func aRetryRunningAfterARecordedFailureIsLeftAlone() throws {
        // setSecret failed 12 minutes ago; Secrets Manager's retry of the same version has since
        // finished createSecret (2 minutes ago) and is in its setSecret now. The failure does not make it stopped.
        let world = StuckWorld()
        world.pendingCreated = now - 40 * minute
        world.recordStep(.createSecret, at: now - 13 * minute)
        world.recordStep(.setSecret, at: now - 12 * minute, failure: .hostCommandFailed("i-0123456789abcdef0: Failed, exit code 6"))
        world.recordStep(.createSecret, at: now - 2 * minute)
        let output = Captured()
        let code = Operator.run(try OperatorArguments.parse(["cancel", "--secret-id", "db/app"]), services: world.services,
                                console: output.console(json: false))
        #expect(code == 1)
        #expect(!world.calls.contains { $0.hasPrefix("SendCommand") || $0.hasPrefix("UpdateSecretVersionStage") })
        #expect(world.stages[pendingId] == ["AWSPENDING"])
        #expect(output.out.contains("its createSecret succeeded 2 min ago after an earlier failure"))
        #expect(output.out.contains("--force"))

        // The same records with the failure last: the rotation stopped there, and cancel goes ahead.
        let stopped = StuckWorld()
        stopped.pendingCreated = now - 40 * minute
        stopped.recordStep(.createSecret, at: now - 13 * minute)
        stopped.recordStep(.setSecret, at: now - 1 * minute, failure: .hostCommandFailed("i-0123456789abcdef0: Failed, exit code 6"))
        let cancelled = Operator.run(try OperatorArguments.parse(["cancel", "--secret-id", "db/app"]), services: stopped.services,
                                     console: Captured().console(json: false))
        #expect(cancelled == 0)
        #expect(stopped.stages[pendingId] == [])
    }

    @Test func aRetrysSetThatLandsBeforeTheLabelIsRemovedIsUndone() throws {
        let world = StuckWorld()
        // After the proof, a retry of the rotation sets the pending password on the host.
        world.meanwhile = { world.accepting.remove("i-0123456789abcdef0") }
        let code = Operator.run(try OperatorArguments.parse(["cancel", "--secret-id", "db/app"]), services: world.services,
                                console: Captured().console(json: false))
        #expect(code == 0)
        #expect(world.accepting.contains("i-0123456789abcdef0"), "the host was left on the pending password, which no label holds")
        #expect(world.stages[pendingId] == [])
    }

    @Test func anUnprovenSettlePutsThePendingLabelBack() throws {
        let world = StuckWorld()
        world.setAnswers = false
        let output = Captured()
        let code = Operator.run(try OperatorArguments.parse(["cancel", "--secret-id", "db/app"]), services: world.services,
                                console: output.console(json: false))
        #expect(code == 1)
        #expect(world.calls.last == "UpdateSecretVersionStage AWSPENDING to \(pendingId)")
        #expect(world.stages[pendingId] == ["AWSPENDING"])
        #expect(output.out.contains("AWSPENDING is back on version \(pendingId)"))
    }

    @Test func labelsThatMovedDuringTheProofChangeNothing() throws {
        let world = StuckWorld()
        world.onVerify = { world.stages = [currentId: ["AWSPREVIOUS"], pendingId: ["AWSCURRENT"]] }
        let output = Captured()
        let code = Operator.run(try OperatorArguments.parse(["cancel", "--secret-id", "db/app"]), services: world.services,
                                console: output.console(json: false))
        #expect(code == 1)
        #expect(!world.calls.contains { $0.hasPrefix("UpdateSecretVersionStage") })
        #expect(output.out.contains("the labels moved while the hosts were proved"))
    }
}

