import AWS
import RotatorJSON
import RotatorLogging
import RotatorTestSupport
import Testing
@testable import Rotation

let token = "11111111-2222-3333-4444-555555555555"
let oldPassword = "initial-Password-1"
/// What the stack's deployment wrote as AWSCURRENT's password, marked a placeholder (World(placeholder:)): no host has it.
let placeholderPassword = "Deployment-Random-1"
/// AWSCURRENT's version in a new World.
let currentVersion = "00000000-0000-0000-0000-00000000000a"
let instanceA = "i-0123456789abcdef0"
let instanceB = "i-0fedcba9876543210"

/// A rotation world: one secret, two hosts holding the current password, fakes for AWS.
final class World {
    let clock = ManualClock(nowMilliseconds: clockStart)
    let secrets: FakeSecretsManager
    let ssm: FakeRunCommand
    let sns = FakeNotifications()
    let lines = LogLines()
    let hosts: HostRunner
    let alerts: AlertPublisher
    var deadline: Int64
    /// The function's LOGIN_TAG (the shared layout); nil as in the single stack.
    var loginTag: String?
    /// The function's SECRET_KEY_ARN (the shared layout); nil as in the single stack.
    var secretKeyArn: String?
    /// A rotator per invocation, as the function makes one: for the invocation ending at `deadline`.
    var rotator: Rotator {
        Rotator(secrets: secrets, hosts: hosts, alerts: alerts, passwordPolicy: try! PasswordPolicy(), clock: clock,
                deadlineMilliseconds: deadline, loginTag: loginTag, secretKeyArn: secretKeyArn)
    }

    /// `placeholder`: AWSCURRENT holds the deployment's random password (`placeholderPassword`),
    /// marked `"passwordPlaceholder":true` (template.yaml, DatabaseSecret), while the hosts hold
    /// `oldPassword`, the applications' own: a login the stack adopted.
    init(topic: String? = "arn:aws:sns:us-east-1:123456789012:alerts", instances: [String] = [instanceA, instanceB],
         placeholder: Bool = false) {
        secrets = FakeSecretsManager(current: World.current(instances: instances, placeholder: placeholder))
        ssm = FakeRunCommand(secrets: secrets)
        for id in instances { ssm.hosts[id] = .init(password: oldPassword, fault: nil) }
        hosts = HostRunner(ssm: ssm, documents: [.postgres: "RotatorPostgres", .mysql: "RotatorMySQL"],
                           verifier: DocumentVerifier(shipped: TestDocument.shipped), clock: clock)
        alerts = AlertPublisher(sns: sns, topicArn: topic)
        deadline = clock.nowMilliseconds + 300_000
    }

    /// AWSCURRENT's JSON text (see `init`).
    static func current(instances: [String] = [instanceA, instanceB], placeholder: Bool = false) -> String {
        let ids = instances.map { "\"\($0)\"" }.joined(separator: ",")
        let password = placeholder ? #""passwordPlaceholder":true,"password":"\#(placeholderPassword)""# : #""password":"\#(oldPassword)""#
        return """
            {"engine":"postgres","host":"db.internal","port":5432,"username":"app",\(password),"dbname":"app","instanceIds":[\(ids)],"owner":"team-a"}
            """
    }

    func run(_ step: RotationStep, rotationToken: String? = "rotation-token-secret") throws(RotationError) {
        let event = RotationEvent(step: step, secretId: secrets.arn, token: token, rotationToken: rotationToken)
        try rotator.rotate(event, logger: lines.logger)
    }

    /// The rotation Secrets Manager starts (`token` labelled AWSPENDING, with no value yet) and its
    /// createSecret, which writes the pending version every later step works on.
    func createPendingVersion() throws(RotationError) {
        secrets.startRotation(token: token)
        try run(.createSecret)
    }

    /// Runs `step`, which the test expects to fail, and returns its error; a step that succeeded is
    /// recorded as the test's failure and gives nil (so `try #require` stops the test there).
    func failure(of step: RotationStep) -> RotationError? {
        do {
            try run(step)
        } catch {
            return error
        }
        Issue.record("\(step.rawValue) succeeded; the test expected it to fail")
        return nil
    }

    func pendingPassword() -> String? {
        secrets.versions[token]?.secretString.flatMap { try? JSON.parse($0) }?["password"]?.stringValue
    }
}

final class LogLines: @unchecked Sendable {
    var lines: [String] = []
    var logger: Logger { Logger(format: .json, minimumLevel: .debug, sink: { [self] in lines.append($0) }) }
}

@Suite struct RotationStepTests {
    @Test func fullRotationMovesStagesAndChangesEveryHost() throws {
        let w = World()
        w.secrets.startRotation(token: token)
        for step in RotationStep.allCases { try w.run(step) }

        let newPassword = try #require(w.pendingPassword())
        #expect(newPassword != oldPassword)
        #expect(newPassword.count == 32)
        #expect(w.secrets.stages(of: token) == ["AWSCURRENT"])
        #expect(w.secrets.stages(of: "00000000-0000-0000-0000-00000000000a") == ["AWSPREVIOUS"])
        #expect(w.ssm.hosts[instanceA]?.password == newPassword)
        #expect(w.ssm.hosts[instanceB]?.password == newPassword)
        #expect(w.sns.published.isEmpty)
        // Every field but the password is copied, in order.
        let pending = try JSON.parse(w.secrets.versions[token]!.secretString!)
        let current = try JSON.parse(w.secrets.versions["00000000-0000-0000-0000-00000000000a"]!.secretString!)
        #expect(pending.objectValue!.map(\.0) == current.objectValue!.map(\.0))
        #expect(pending.setting("password", to: .string(oldPassword)) == current)
        #expect(w.secrets.rotationTokensSeen == ["rotation-token-secret"])
    }

    @Test func everyStepTwiceEndsTheSameAndWritesOnce() throws {
        let w = World()
        w.secrets.startRotation(token: token)
        for step in RotationStep.allCases {
            try w.run(step)
            try w.run(step)
        }
        #expect(w.secrets.calls.filter { $0 == "PutSecretValue" }.count == 1)
        #expect(w.secrets.stages(of: token) == ["AWSCURRENT"])
        #expect(w.ssm.hosts[instanceA]?.password == w.pendingPassword())
    }

    @Test func hostParametersAreIdentifiersOnly() throws {
        let w = World()
        w.secrets.startRotation(token: token)
        for step in RotationStep.allCases { try w.run(step) }
        let newPassword = try #require(w.pendingPassword())
        #expect(w.ssm.sent.count == 3)   // set, verify, finishSecret's settle
        for sent in w.ssm.sent {
            #expect(sent.input.documentName == "RotatorPostgres")
            #expect(sent.input.parameters.map(\.0) == ["Action", "SecretId", "VersionId"])
            #expect(sent.input.instanceIds == [instanceA, instanceB])
            #expect(sent.input.comment.count <= 100)
            #expect(sent.input.timeoutSeconds >= 30)
            let everything = sent.input.parameters.flatMap(\.1).joined() + sent.input.comment
            #expect(!everything.contains(newPassword) && !everything.contains(oldPassword))
        }
        #expect(w.ssm.sent[0].input.parameters[0].1 == ["set"])
        #expect(w.ssm.sent[1].input.parameters[0].1 == ["verify"])
        #expect(w.ssm.sent[2].input.parameters[0].1 == ["set"])
    }

    @Test func logsNeverCarryPasswordsOrTheRotationToken() throws {
        let w = World()
        w.secrets.startRotation(token: token)
        for step in RotationStep.allCases { try w.run(step) }
        let all = w.lines.lines.joined(separator: "\n")
        #expect(!all.contains(oldPassword))
        #expect(!all.contains(try #require(w.pendingPassword())))
        #expect(!all.contains("rotation-token-secret"))
        #expect(all.contains(w.secrets.arn))
    }

    @Test func guardRejectsDisabledRotation() {
        let w = World()
        w.secrets.startRotation(token: token)
        w.secrets.rotationEnabled = false
        #expect(throws: RotationError.self) { try w.run(.createSecret) }
        #expect(!w.secrets.calls.contains("PutSecretValue"))
    }

    @Test func guardAcceptsAbsentRotationEnabled() throws {
        let w = World()
        w.secrets.startRotation(token: token)
        w.secrets.rotationEnabled = nil
        try w.run(.createSecret)
        #expect(w.pendingPassword() != nil)
    }

    @Test func guardRejectsATokenThatIsNotAVersion() {
        let w = World()
        do {
            try w.run(.createSecret)
            Issue.record("expected an error")
        } catch {
            guard case .versionNotPending = error else { Issue.record("wrong error \(error)"); return }
        }
        #expect(w.secrets.calls == ["DescribeSecret"])
    }

    @Test func guardRejectsAVersionWithoutPending() {
        let w = World()
        w.secrets.versions[token] = .init(stages: ["AWSPREVIOUS"], secretString: "{}")
        #expect(throws: RotationError.self) { try w.run(.setSecret) }
        #expect(w.ssm.sent.isEmpty)
    }

    /// A version that is a copy of AWSCURRENT but no longer (or never) AWSPENDING: whatever the
    /// step, nothing runs on it. finishSecret on an AWSPREVIOUS version would otherwise make an old
    /// password current again.
    @Test(arguments: RotationStep.allCases)
    func guardRejectsEveryStepOnAVersionWithoutPending(step: RotationStep) throws {
        let w = World()
        let currentId = "00000000-0000-0000-0000-00000000000a"
        let current = try #require(w.secrets.versions[currentId]?.secretString)
        w.secrets.versions[token] = .init(stages: ["AWSPREVIOUS"], secretString: current)
        do {
            try w.run(step)
            Issue.record("\(step) ran on a version without AWSPENDING")
        } catch {
            guard case .versionNotPending = error else { Issue.record("wrong error \(error)"); return }
        }
        #expect(w.secrets.calls == ["DescribeSecret"])
        #expect(w.ssm.sent.isEmpty)
        #expect(w.secrets.stages(of: token) == ["AWSPREVIOUS"])
        #expect(w.secrets.stages(of: currentId) == ["AWSCURRENT"])
    }

    @Test func guardSucceedsWithoutWorkWhenTheTokenIsCurrent() throws {
        let w = World()
        w.secrets.versions[token] = .init(stages: ["AWSCURRENT"], secretString: "{}")
        w.secrets.versions["00000000-0000-0000-0000-00000000000a"]!.stages = []
        for step in RotationStep.allCases { try w.run(step) }
        #expect(w.secrets.calls == Array(repeating: "DescribeSecret", count: 4))
        #expect(w.ssm.sent.isEmpty)
    }

    @Test func aRetryAfterAnInterruptedFinishRemovesPendingFromTheCurrentVersion() throws {
        let w = World()
        w.secrets.startRotation(token: token)
        for step in RotationStep.allCases.dropLast() { try w.run(step) }
        // finishSecret's first move happened, then the process died before its second.
        try w.secrets.updateSecretVersionStage(w.secrets.arn, stage: "AWSCURRENT", moveTo: token,
                                               removeFrom: "00000000-0000-0000-0000-00000000000a")
        #expect(w.secrets.stages(of: token) == ["AWSCURRENT", "AWSPENDING"])
        try w.run(.finishSecret)
        #expect(w.secrets.stages(of: token) == ["AWSCURRENT"])
        #expect(w.secrets.stages(of: "00000000-0000-0000-0000-00000000000a") == ["AWSPREVIOUS"])
    }

    @Test(arguments: [1, 2])
    func finishSecretAcceptsAStageMoveAppliedWithItsAnswerLost(_ failing: Int) throws {
        let w = World()
        w.secrets.startRotation(token: token)
        for step in RotationStep.allCases.dropLast() { try w.run(step) }
        w.secrets.stageMoveFailures = Array(repeating: (true, serviceError("InvalidParameterException")), count: failing)
        try w.run(.finishSecret)
        #expect(w.secrets.stages(of: token) == ["AWSCURRENT"])
        #expect(w.secrets.stages(of: "00000000-0000-0000-0000-00000000000a") == ["AWSPREVIOUS"])
        #expect(w.sns.published.isEmpty)
    }

    /// The retry after an interrupted finishSecret removes AWSPENDING from the current version; when
    /// that call fails, the stages it finds decide: removed (the answer was lost) is success, still
    /// there is a failure, not a rotation reported done with AWSPENDING left behind.
    @Test(arguments: [true, false])
    func aRetryAfterAnInterruptedFinishJudgesAFailedRemovalByTheStages(applied: Bool) throws {
        let w = World()
        w.secrets.startRotation(token: token)
        for step in RotationStep.allCases.dropLast() { try w.run(step) }
        try w.secrets.updateSecretVersionStage(w.secrets.arn, stage: "AWSCURRENT", moveTo: token,
                                               removeFrom: "00000000-0000-0000-0000-00000000000a")
        w.secrets.stageMoveFailures = [(applied, serviceError("InvalidParameterException"))]
        if applied {
            try w.run(.finishSecret)
            #expect(w.secrets.stages(of: token) == ["AWSCURRENT"])
        } else {
            #expect(throws: RotationError.self) { try w.run(.finishSecret) }
            #expect(w.secrets.stages(of: token) == ["AWSCURRENT", "AWSPENDING"])
        }
    }

    /// GetRandomPassword's answer is checked against what was asked before it is stored: a password
    /// with a character outside the alphabet (a quote a host script would have to survive) or of
    /// another length is never written, nor shown.
    @Test(arguments: ["abcdefghijklmnopqrstuvwxyz01234'", "abcdefghijklmnopqrstuvwxyz0123", "abcdefghijklmnopqrstuvwxyz0123456"])
    func createSecretRefusesARandomPasswordOutsideThePolicy(answer: String) throws {
        let w = World()
        w.secrets.startRotation(token: token)
        w.secrets.randomPasswordAnswer = answer
        do {
            try w.run(.createSecret)
            Issue.record("stored a password outside the policy")
        } catch {
            #expect(error.description.contains("GetRandomPassword"), "\(error.description)")
            #expect(!error.description.contains(answer))
        }
        #expect(!w.secrets.calls.contains("PutSecretValue"))
        #expect(w.pendingPassword() == nil)
        #expect(!w.lines.lines.joined().contains(answer))
    }

    @Test func finishSecretStillFailsWhenTheMoveWasNotMade() throws {
        let w = World()
        w.secrets.startRotation(token: token)
        for step in RotationStep.allCases.dropLast() { try w.run(step) }
        w.secrets.stageMoveFailures = [(false, serviceError("InvalidParameterException"))]
        #expect(throws: RotationError.self) { try w.run(.finishSecret) }
        #expect(w.secrets.stages(of: token) == ["AWSPENDING"])
        #expect(w.secrets.stages(of: "00000000-0000-0000-0000-00000000000a") == ["AWSCURRENT"])
    }

    @Test func createSecretRefusesABrokenCurrentSecret() {
        let w = World()
        w.secrets.versions["00000000-0000-0000-0000-00000000000a"]!.secretString = #"{"engine":"postgres","host":"h","username":"app","password":"p"}"#
        w.secrets.startRotation(token: token)
        #expect(throws: RotationError.self) { try w.run(.createSecret) }
        #expect(!w.secrets.calls.contains("PutSecretValue"))
        #expect(w.pendingPassword() == nil)
    }

    @Test func setSecretWithoutCreateFailsClearly() throws {
        let w = World()
        w.secrets.startRotation(token: token)
        let error = try #require(w.failure(of: .setSecret))
        #expect(error.description.contains("createSecret has not run"))
        #expect(w.ssm.sent.isEmpty)
    }

    @Test func failingSetRollsBackAndKeepsPendingWhenAHostCannotBeRestored() throws {
        let w = World()
        try w.createPendingVersion()
        w.ssm.hosts[instanceB]?.fault = .loginMissing
        #expect(throws: RotationError.self) { try w.run(.setSecret) }

        // A took the new password, then was restored; B never changed.
        #expect(w.ssm.hosts[instanceA]?.password == oldPassword)
        #expect(w.ssm.hosts[instanceB]?.password == oldPassword)
        // B could not prove it accepts AWSCURRENT, so AWSPENDING stays.
        #expect(w.secrets.stages(of: token) == ["AWSPENDING"])
        #expect(w.secrets.stages(of: "00000000-0000-0000-0000-00000000000a") == ["AWSCURRENT"])
        let alert = try #require(w.sns.published.first)
        #expect(w.sns.published.count == 1)
        #expect(alert.message.contains(w.secrets.arn))
        #expect(alert.message.contains("setSecret"))
        #expect(alert.message.contains(instanceB))
        #expect(alert.message.contains("login app does not exist"))
        #expect(!alert.message.contains(oldPassword) && !alert.message.contains(w.pendingPassword()!))
        #expect(alert.subject.count <= 100)
    }

    /// A restore that cannot even be sent proves nothing: AWSPENDING stays, as for a host that failed it.
    @Test func aRestoreThatCannotBeSentKeepsPending() throws {
        let w = World(instances: [instanceA])
        try w.createPendingVersion()
        w.ssm.hosts[instanceA]?.fault = .loginMissing
        w.ssm.sendingFails = (after: 1, error: serviceError("ThrottlingException"))
        #expect(throws: RotationError.self) { try w.run(.setSecret) }
        #expect(w.ssm.sent.count == 1)
        #expect(w.secrets.stages(of: token) == ["AWSPENDING"])
        #expect(w.secrets.stages(of: "00000000-0000-0000-0000-00000000000a") == ["AWSCURRENT"])
        #expect(w.sns.published.count == 1)
        #expect(w.sns.published.first?.message.contains("restore of AWSCURRENT failed") == true)
    }

    @Test func failingVerifyRestoresCurrentAndAbandonsPending() throws {
        let w = World()
        try w.createPendingVersion()
        try w.run(.setSecret)
        w.ssm.hosts[instanceA]?.password = "changed-behind-our-back"
        #expect(throws: RotationError.self) { try w.run(.testSecret) }

        #expect(w.ssm.hosts[instanceA]?.password == oldPassword)
        #expect(w.ssm.hosts[instanceB]?.password == oldPassword)
        // Every host proved it accepts AWSCURRENT: the pending version is abandoned cleanly.
        #expect(w.secrets.stages(of: token) == [])
        #expect(w.secrets.stages(of: "00000000-0000-0000-0000-00000000000a") == ["AWSCURRENT"])
        #expect(w.sns.published.count == 1)
        #expect(w.sns.published[0].message.contains("testSecret"))
    }

    @Test func successWithoutResultLineIsAFailure() throws {
        let w = World(instances: [instanceA])
        try w.createPendingVersion()
        w.ssm.hosts[instanceA]?.fault = .noResultLine
        let error = try #require(w.failure(of: .setSecret))
        #expect(error.errorType == "HostCommandFailed")
        #expect(error.description.contains("no ROTATOR-RESULT line"))
        #expect(w.secrets.stages(of: "00000000-0000-0000-0000-00000000000a") == ["AWSCURRENT"])
        #expect(w.secrets.stages(of: token) == ["AWSPENDING"])
    }

    @Test func outputCutBySSMIsAFailureThatSaysSo() throws {
        let w = World()
        try w.createPendingVersion()
        w.ssm.hosts[instanceB]?.fault = .outputCutBySSM
        let error = try #require(w.failure(of: .setSecret))
        #expect(error.errorType == "HostCommandFailed")
        #expect(error.description.contains("\(instanceB): Success, exit code 0, but no ROTATOR-RESULT line"))
        #expect(error.description.contains("SSM cut the output at 24,000 characters"))
        #expect(!error.description.contains("\(instanceA): Success"))
        // The rollback on the chatty host cannot be proven either: AWSPENDING stays.
        #expect(w.secrets.stages(of: "00000000-0000-0000-0000-00000000000a") == ["AWSCURRENT"])
        #expect(w.secrets.stages(of: token) == ["AWSPENDING"])
        #expect(w.ssm.hosts[instanceA]?.password == oldPassword)
        #expect(w.sns.published.count == 1)
    }

    @Test func aFailedCopyOfSetSecretDoesNotUndoARotationAnotherCopyFinished() throws {
        let w = World(instances: [instanceA])
        try w.createPendingVersion()
        let newPassword = try #require(w.pendingPassword())
        // This copy's host fails; meanwhile another copy set the host and the rotation finished.
        w.ssm.hosts[instanceA]?.fault = .loginMissing
        w.ssm.whileSending = { _ in
            w.ssm.hosts[instanceA]?.password = newPassword
            try? w.secrets.updateSecretVersionStage(w.secrets.arn, stage: "AWSCURRENT", moveTo: token,
                                                    removeFrom: "00000000-0000-0000-0000-00000000000a")
            try? w.secrets.updateSecretVersionStage(w.secrets.arn, stage: "AWSPENDING", moveTo: nil, removeFrom: token)
        }
        let error = try #require(w.failure(of: .setSecret))
        #expect(error.errorType == "HostCommandFailed")
        #expect(error.description.contains("Nothing was rolled back"))
        #expect(w.ssm.sent.count == 1, "a rollback to the old password was sent")
        #expect(w.ssm.hosts[instanceA]?.password == newPassword)
        #expect(w.secrets.stages(of: token) == ["AWSCURRENT"])
        #expect(w.sns.published.count == 1)
    }

    /// Either change alone means the rotation moved on while the step ran, and a restore of the
    /// stale AWSCURRENT would undo it: AWSCURRENT put on another version (by hand, or a rotation
    /// that started over), or AWSPENDING taken off the token (another copy abandoned it).
    @Test(arguments: ["AWSCURRENT moved", "AWSPENDING removed"])
    func aFailedSetRestoresNothingOnceTheRotationMovedOn(change: String) throws {
        let w = World(instances: [instanceA])
        let currentId = "00000000-0000-0000-0000-00000000000a", otherId = "00000000-0000-0000-0000-00000000000c"
        try w.createPendingVersion()
        w.secrets.versions[otherId] = .init(stages: [], secretString: w.secrets.versions[currentId]!.secretString)
        w.ssm.hosts[instanceA]?.fault = .loginMissing
        w.ssm.whileSending = { _ in
            if change == "AWSCURRENT moved" {
                try? w.secrets.updateSecretVersionStage(w.secrets.arn, stage: "AWSCURRENT", moveTo: otherId, removeFrom: currentId)
            } else {
                try? w.secrets.updateSecretVersionStage(w.secrets.arn, stage: "AWSPENDING", moveTo: nil, removeFrom: token)
            }
            w.ssm.whileSending = nil
        }
        let error = try #require(w.failure(of: .setSecret))
        #expect(error.description.contains("Nothing was rolled back"), "\(error.description)")
        #expect(error.description.contains(change == "AWSCURRENT moved" ? "AWSCURRENT moved from version \(currentId) to \(otherId)"
                                                                         : "version \(token) is no longer AWSPENDING"))
        #expect(w.ssm.sent.count == 1, "a restore was sent")
    }

    @Test(arguments: [1, 2, 3]) func finishSecretTwiceAtOnceBothSucceed(stagesMovedByTheOtherCopy: Int) throws {
        let w = World()
        w.secrets.startRotation(token: token)
        for step in RotationStep.allCases.dropLast() { try w.run(step) }
        let old = "00000000-0000-0000-0000-00000000000a"
        // The other copy moves AWSCURRENT just before this one, and removes AWSPENDING: 2, at once;
        // 3, just before this one's own removal of it.
        w.secrets.meanwhile = ("UpdateSecretVersionStage", {
            try? w.secrets.updateSecretVersionStage(w.secrets.arn, stage: "AWSCURRENT", moveTo: token, removeFrom: old)
            let removePending = { try? w.secrets.updateSecretVersionStage(w.secrets.arn, stage: "AWSPENDING", moveTo: nil, removeFrom: token) }
            if stagesMovedByTheOtherCopy == 2 { removePending() }
            if stagesMovedByTheOtherCopy == 3 { w.secrets.meanwhile = ("UpdateSecretVersionStage", { removePending() }) }
        })
        try w.run(.finishSecret)
        #expect(w.secrets.stages(of: token) == ["AWSCURRENT"])
        #expect(w.secrets.stages(of: old) == ["AWSPREVIOUS"])
    }

    @Test func createSecretTwiceAtOnceKeepsTheFirstPassword() throws {
        let w = World()
        w.secrets.startRotation(token: token)
        // What the other copy writes: AWSCURRENT's fields with its own password.
        let first = try #require(try JSON.parse(#require(w.secrets.versions["00000000-0000-0000-0000-00000000000a"]?.secretString))
            .setting("password", to: .string("stored-by-the-other-copy")).serialized)
        w.secrets.meanwhile = ("PutSecretValue", {
            w.secrets.versions[token]?.secretString = first
        })
        try w.run(.createSecret)
        #expect(w.pendingPassword() == "stored-by-the-other-copy")
        #expect(w.secrets.stages(of: token) == ["AWSPENDING"])
    }

    @Test func finishSecretStillFailsWhenTheTokenDidNotBecomeCurrent() throws {
        let w = World()
        w.secrets.startRotation(token: token)
        for step in RotationStep.allCases.dropLast() { try w.run(step) }
        // Someone moved AWSCURRENT elsewhere: not a copy of this step; the error stands.
        w.secrets.versions["99999999-0000-0000-0000-000000000000"] = .init(stages: [], secretString: "{}")
        w.secrets.meanwhile = ("UpdateSecretVersionStage", {
            try? w.secrets.updateSecretVersionStage(w.secrets.arn, stage: "AWSCURRENT", moveTo: "99999999-0000-0000-0000-000000000000",
                                                    removeFrom: "00000000-0000-0000-0000-00000000000a")
        })
        #expect(throws: RotationError.self) { try w.run(.finishSecret) }
        #expect(w.secrets.stages(of: token) == ["AWSPENDING"])
    }

    /// SSM can report `Success` for a script that exited non-zero (a document step that does not
    /// stop on failure): the exit code decides, even with a valid result line in the output.
    @Test(arguments: [FakeRunCommand.Fault.nonZeroExitAfterResultLine, .failedStatusAfterResultLine])
    func aValidResultLineWithoutStatusSuccessAndExitCodeZeroIsAFailure(fault: FakeRunCommand.Fault) throws {
        let w = World(instances: [instanceA])
        try w.createPendingVersion()
        w.ssm.hosts[instanceA]?.fault = fault
        let error = try #require(w.failure(of: .setSecret))
        #expect(error.errorType == "HostCommandFailed")
        #expect(error.description.contains(fault == .failedStatusAfterResultLine ? "\(instanceA): Failed, exit code 0"
                                                                               : "\(instanceA): Success, exit code 3"), "\(error.description)")
        #expect(w.secrets.stages(of: "00000000-0000-0000-0000-00000000000a") == ["AWSCURRENT"])
        #expect(w.secrets.stages(of: token) == ["AWSPENDING"])
        #expect(w.sns.published.count == 1)
    }

    @Test func aResultLineForAnotherVersionIsAFailure() throws {
        let w = World(instances: [instanceA])
        try w.createPendingVersion()
        w.ssm.hosts[instanceA]?.fault = .wrongVersionInResult
        #expect(throws: RotationError.self) { try w.run(.setSecret) }
    }

    @Test func invocationNotYetKnownIsWaitedFor() throws {
        let w = World()
        w.ssm.notYetPolls = 3
        w.secrets.startRotation(token: token)
        for step in RotationStep.allCases { try w.run(step) }
        #expect(w.secrets.stages(of: token) == ["AWSCURRENT"])
        #expect(!w.clock.sleeps.isEmpty)
    }

    /// ListCommandInvocations says which instances are done; only those are read in full, so a slow
    /// host costs one listing per poll, not a GetCommandInvocation per instance.
    @Test func onlyFinishedInvocationsAreRead() throws {
        let w = World()
        w.ssm.hosts[instanceB]?.fault = .neverAnswers
        let command = try HostCommand(action: .set, secretArn: w.secrets.arn, versionId: "00000000-0000-0000-0000-00000000000a")
        let results = try w.hosts.run(command, engine: .postgres, on: [instanceA, instanceB], step: .setSecret,
                                      untilMilliseconds: w.clock.nowMilliseconds + 10_000, logger: w.lines.logger)
        #expect(results.map(\.status) == ["Success", "NoAnswer"])
        #expect(w.ssm.invocationReads == [instanceA: 1])
    }

    /// SSM's listing may show an invocation finished while GetCommandInvocation still answers
    /// InProgress: that is "not yet", not the host's result.
    @Test func aFinishedListingWithAStaleInvocationIsWaitedFor() throws {
        let w = World()
        w.ssm.staleReads = 2
        w.secrets.startRotation(token: token)
        for step in RotationStep.allCases { try w.run(step) }
        #expect(w.secrets.stages(of: token) == ["AWSCURRENT"])
        #expect(w.ssm.hosts[instanceA]?.password == w.pendingPassword())
    }

    @Test func aSilentHostIsCancelledBeforeTheDeadline() throws {
        let w = World(instances: [instanceA])
        w.deadline = w.clock.nowMilliseconds + 60_000
        try w.createPendingVersion()
        w.ssm.hosts[instanceA]?.fault = .neverAnswers
        let error = try #require(w.failure(of: .setSecret))
        #expect(error.description.contains("NoAnswer"))
        #expect(w.clock.nowMilliseconds < w.deadline)
        // Both the set and the restore were cancelled, not left running.
        #expect(w.ssm.cancelled.map(\.1) == [[instanceA], [instanceA]])
        #expect(w.secrets.stages(of: token) == ["AWSPENDING"])
        #expect(w.sns.published.count == 1)
    }

    /// The budget ends a whole number of polls after the send: the runner must give up at the poll
    /// before its end, not sleep onto it (the budget's end is when the step must be rolling back).
    /// The random source that jitters the waits gives 0, so every wait is exactly half the pace and
    /// the eighth would end on the budget's last millisecond.
    @Test func aHostThatNeverAnswersIsCancelledStrictlyBeforeTheBudgetEnds() throws {
        let w = World(instances: [instanceA])
        w.ssm.hosts[instanceA]?.fault = .neverAnswers
        let hosts = HostRunner(ssm: w.ssm, documents: [.postgres: "RotatorPostgres"], verifier: DocumentVerifier(shipped: TestDocument.shipped),
                               clock: w.clock, random: { 0 })
        let budgetEnd = w.clock.nowMilliseconds + 4 * hosts.pollInitialMilliseconds
        let command = try HostCommand(action: .set, secretArn: w.secrets.arn, versionId: token)
        let results = try hosts.run(command, engine: .postgres, on: [instanceA], step: .setSecret,
                                    untilMilliseconds: budgetEnd, logger: w.lines.logger)
        #expect(results.map(\.status) == ["NoAnswer"])
        #expect(w.clock.nowMilliseconds < budgetEnd)
        #expect(w.ssm.cancelled.map(\.1) == [[instanceA]])
    }

    /// What an alert shows of a script's standard error: its lines trimmed and joined, blank ones
    /// dropped, and at most the last 500 characters (the end says why the script stopped).
    @Test func errorExcerptsAreOneLineAndKeepTheEnd() {
        #expect(HostRunner.excerpt("  first \n\n\t second\t\r\n   \nthird") == "first | second | third")
        #expect(HostRunner.excerpt("") == "")
        let exactly = String(repeating: "a", count: 499) + "z"
        #expect(HostRunner.excerpt(exactly) == exactly)
        #expect(HostRunner.excerpt("b" + exactly) == "…" + exactly)
        #expect(HostRunner.excerpt("head\n" + exactly) == "…" + exactly)
    }

    @Test func aCommandThatCannotBeFollowedIsCancelledAndRolledBack() throws {
        let w = World(instances: [instanceA])
        try w.createPendingVersion()
        w.ssm.followError = serviceError("AccessDeniedException")
        let error = try #require(w.failure(of: .setSecret))
        #expect(error.description.contains("NotFollowed"))
        // The set ran unseen: it was cancelled and the current password sent back, also unseen.
        #expect(w.ssm.sent.count == 2)
        #expect(w.ssm.cancelled.map(\.1) == [[instanceA], [instanceA]])
        #expect(w.ssm.hosts[instanceA]?.password == oldPassword)
        // Nothing proves the restore, so the pending version keeps its label.
        #expect(w.secrets.stages(of: token) == ["AWSPENDING"])
        #expect(w.sns.published.count == 1)
    }

    @Test func aFailedAWSCallIsAlertedAndFailsTheStep() throws {
        let w = World()
        w.secrets.startRotation(token: token)
        let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db/gone-XyZaBc"
        let event = RotationEvent(step: .createSecret, secretId: missing, token: token, rotationToken: "rotation-token-secret")
        do {
            try w.rotator.rotate(event, logger: w.lines.logger)
            Issue.record("expected an error")
        } catch {
            #expect(error.errorType == "AWSError")
        }
        let alert = try #require(w.sns.published.first)
        #expect(w.sns.published.count == 1)
        #expect(alert.subject.contains("createSecret"))
        #expect(alert.message.contains(missing))
        #expect(alert.message.contains("ResourceNotFoundException"))
        #expect(!alert.message.contains("rotation-token-secret"))
    }

    @Test func aFailedHostIsAlertedOnce() throws {
        let w = World(instances: [instanceA])
        try w.createPendingVersion()
        w.ssm.hosts[instanceA]?.fault = .loginMissing
        #expect(throws: RotationError.self) { try w.run(.setSecret) }
        #expect(w.sns.published.count == 1)
    }

    @Test func noTopicMeansNoAlertButTheStepStillFails() throws {
        let w = World(topic: nil, instances: [instanceA])
        try w.createPendingVersion()
        w.ssm.hosts[instanceA]?.fault = .loginMissing
        #expect(throws: RotationError.self) { try w.run(.setSecret) }
        #expect(w.sns.published.isEmpty)
    }

    @Test func anUnconfiguredEngineFailsBeforeAnyCommand() throws {
        let w = World(instances: [instanceA])
        w.secrets.versions["00000000-0000-0000-0000-00000000000a"]!.secretString =
            #"{"engine":"sqlserver","host":"h","username":"app","password":"p","instanceIds":["i-0123456789abcdef0"]}"#
        try w.createPendingVersion()
        let error = try #require(w.failure(of: .setSecret))
        #expect(error.errorType == "Configuration")
        #expect(w.ssm.sent.isEmpty)
    }

    /// A document variable set to the empty string is no document: a configuration error, not a
    /// SendCommand that SSM refuses after the step began.
    @Test func anEmptyDocumentNameFailsBeforeAnyCommand() throws {
        let w = World(instances: [instanceA])
        let runner = HostRunner(ssm: w.ssm, documents: [.postgres: ""],
                                verifier: DocumentVerifier(shipped: TestDocument.shipped), clock: w.clock)
        let command = try HostCommand(action: .set, secretArn: w.secrets.arn, versionId: token)
        do {
            _ = try runner.run(command, engine: .postgres, on: [instanceA], step: .setSecret,
                               untilMilliseconds: w.deadline, logger: w.lines.logger)
            Issue.record("expected an error")
        } catch {
            #expect(error.errorType == "Configuration")
        }
        #expect(w.ssm.sent.isEmpty)
    }
}
