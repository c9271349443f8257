import AWS
import Rotation
import Testing
@testable import Operations

let now: Int64 = 1_800_000_000_000
let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db/app-AbCdEf"
let function = "arn:aws:lambda:us-east-1:123456789012:function:rotator"
let currentId = "11111111-1111-1111-1111-111111111111"
let pendingId = "22222222-2222-2222-2222-222222222222"
let minute: Int64 = 60_000

func state(_ stages: [String: [String]], enabled: Bool? = true, lambda: String? = function, created: [String: Int64] = [:],
           pendingHasValue: Bool? = nil, steps: [StepRecord] = [], logProblem: String? = nil, next: Int64? = nil) -> SecretState {
    let description = SecretDescription(arn: arn, rotationEnabled: enabled, versionIdsToStages: stages, name: "db/app",
                                        rotationLambdaArn: lambda,
                                        rotationSchedule: RotationSchedule(scheduleExpression: nil, automaticallyAfterDays: 30, duration: "3h"),
                                        lastRotatedMilliseconds: now - 86_400_000, nextRotationMilliseconds: next)
    return SecretState(description: description,
                       versions: stages.map { .init(versionId: $0.key, stages: $0.value, createdMilliseconds: created[$0.key]) },
                       versionsProblem: nil, pendingHasValue: pendingHasValue, pendingSteps: steps, logProblem: logProblem,
                       nowMilliseconds: now)
}

func failure(_ step: String, _ reason: String, message: String = "it broke", at: Int64 = now - 30 * minute) -> StepRecord {
    StepRecord(step: step, succeeded: false, reason: reason, message: message, versionId: pendingId, atMilliseconds: at)
}

@Suite struct DiagnosisTests {
    @Test func noPendingVersionIsHealthy() {
        let d = Diagnosis.of(state([currentId: ["AWSCURRENT"]], next: now + minute), secretId: "db/app")
        #expect(d.verdict == .healthy)
        #expect(d.advice.isEmpty)
        #expect(!d.needsAttention)
    }

    @Test func anOverdueRotationAndALeftoverPendingLabelAreNotedButHealthy() {
        let d = Diagnosis.of(state([currentId: ["AWSCURRENT", "AWSPENDING"]], next: now - 3 * 86_400_000), secretId: "db/app")
        #expect(d.verdict == .healthy)
        #expect(d.advice.count == 2)
        #expect(d.advice[0].contains("due 3 days ago"))
        #expect(d.advice[1].contains("interrupted finishSecret"))
    }

    @Test func rotationOffOrWithoutAFunctionIsNotConfigured() {
        #expect(Diagnosis.of(state([currentId: ["AWSCURRENT"]], enabled: false), secretId: "s").verdict == .notConfigured)
        #expect(Diagnosis.of(state([currentId: ["AWSCURRENT"]], enabled: nil), secretId: "s").verdict == .notConfigured)
        let noFunction = Diagnosis.of(state([currentId: ["AWSCURRENT"]], lambda: nil), secretId: "s")
        #expect(noFunction.verdict == .notConfigured)
        #expect(noFunction.summary == "rotation is enabled but names no function")
    }

    @Test func noCurrentVersionIsBroken() {
        let d = Diagnosis.of(state([pendingId: ["AWSPENDING"]]), secretId: "db/app")
        #expect(d.verdict == .broken)
        #expect(d.advice[0].contains("update-secret-version-stage --secret-id db/app"))
    }

    @Test func aYoungPendingVersionWithoutFailureIsInProgress() {
        let d = Diagnosis.of(state([currentId: ["AWSCURRENT"], pendingId: ["AWSPENDING"]], created: [pendingId: now - 5 * minute]),
                             secretId: "s")
        #expect(d.verdict == .inProgress)
        #expect(d.summary.contains("began 5 min ago"))
        #expect(d.advice[0].contains("check again in 15 min"))
    }

    @Test func aYoungPendingVersionWithAFailureIsStuck() {
        let d = Diagnosis.of(state([currentId: ["AWSCURRENT"], pendingId: ["AWSPENDING"]], created: [pendingId: now - 5 * minute],
                                   pendingHasValue: true, steps: [failure("setSecret", "HostCommandFailed", message: "i-1: Failed, exit code 5")]),
                             secretId: "db/app")
        #expect(d.verdict == .stuck)
        #expect(d.cause == "setSecret failed at 2027-01-15 07:30:00 UTC (HostCommandFailed): i-1: Failed, exit code 5")
        #expect(d.advice[0].hasPrefix("A host could not take the new password"))
        #expect(d.advice[1].contains("make rotate SECRET_ID=db/app"))
        #expect(d.advice[1].contains("rotator cancel --secret-id db/app"))
        #expect(d.advice.last == "Never remove AWSPENDING by hand: a host may accept only the pending password.")
    }

    @Test func aStepThatSucceededAfterAFailureIsInProgress() {
        let retried = [failure("setSecret", "HostCommandFailed", at: now - 12 * minute),
                       StepRecord(step: "createSecret", succeeded: true, reason: nil, message: nil, versionId: pendingId, atMilliseconds: now - 2 * minute)]
        let d = Diagnosis.of(state([currentId: ["AWSCURRENT"], pendingId: ["AWSPENDING"]], created: [pendingId: now - 40 * minute],
                                   pendingHasValue: true, steps: retried), secretId: "db/app")
        #expect(d.verdict == .inProgress)
        #expect(d.summary.contains("its createSecret succeeded 2 min ago after an earlier failure"))
        #expect(d.advice[0].contains("check again in 18 min"))
        // The same retry, long past the bound: it stopped without a record (a timeout), so it is stuck.
        let old = retried.map { StepRecord(step: $0.step, succeeded: $0.succeeded, reason: $0.reason, message: $0.message, versionId: $0.versionId,
                                           atMilliseconds: $0.atMilliseconds - 30 * minute) }
        #expect(Diagnosis.of(state([currentId: ["AWSCURRENT"], pendingId: ["AWSPENDING"]], created: [pendingId: now - 70 * minute],
                                   pendingHasValue: true, steps: old), secretId: "db/app").verdict == .stuck)
    }

    @Test func anOldVersionWithARecentStepIsInProgress() {
        // `make rotate` retried a version created yesterday: its createSecret just succeeded.
        let steps = [StepRecord(step: "createSecret", succeeded: true, reason: nil, message: nil, versionId: pendingId, atMilliseconds: now - minute)]
        let d = Diagnosis.of(state([currentId: ["AWSCURRENT"], pendingId: ["AWSPENDING"]], created: [pendingId: now - 86_400_000],
                                   pendingHasValue: true, steps: steps), secretId: "db/app")
        #expect(d.verdict == .inProgress)
    }

    @Test func theAdviceFollowsTheFailedStepAndReason() {
        let stages = [currentId: ["AWSCURRENT"], pendingId: ["AWSPENDING"]]
        let cases: [(StepRecord, String, String)] = [
            (failure("testSecret", "HostCommandFailed"), "A host could not log in with the new password", "Then "),
            (failure("createSecret", "InvalidSecret"), "The secret's JSON is incomplete", "No host was touched yet"),
            (failure("finishSecret", "AWSError"), "An AWS call failed", "only the labels did not move"),
            (failure("setSecret", "Configuration"), "The function's configuration is wrong", "Then "),
            (failure("setSecret", "VersionNotPending"), "labels changed under the rotation", "Then "),
            (failure("setSecret", "DocumentRefused"), "default version is not the one this rotator ships", "Then "),
        ]
        for (record, reasonAdvice, stepAdvice) in cases {
            let d = Diagnosis.of(state(stages, steps: [record]), secretId: "s")
            #expect(d.verdict == .stuck)
            #expect(d.advice[0].contains(reasonAdvice), "\(record.step) \(record.reason ?? "")")
            #expect(d.advice[1].contains(stepAdvice), "\(record.step) \(record.reason ?? "")")
        }
    }

    @Test func theLastFailureCountsNotAnEarlierOne() {
        let steps = [failure("setSecret", "AWSError", at: now - 50 * minute),
                     StepRecord(step: "setSecret", succeeded: true, reason: nil, message: nil, versionId: pendingId, atMilliseconds: now - 40 * minute),
                     failure("testSecret", "HostCommandFailed", at: now - 39 * minute)]
        let d = Diagnosis.of(state([currentId: ["AWSCURRENT"], pendingId: ["AWSPENDING"]], steps: steps), secretId: "s")
        #expect(d.cause?.hasPrefix("testSecret failed") == true)
    }

    @Test func withoutALoggedFailureItSaysWhatIsKnown() {
        let stages = [currentId: ["AWSCURRENT"], pendingId: ["AWSPENDING"]]
        let empty = Diagnosis.of(state(stages, created: [pendingId: now - 90 * minute], pendingHasValue: false), secretId: "s")
        #expect(empty.verdict == .stuck)
        #expect(empty.cause == nil)
        #expect(empty.advice[0] == "The pending version has no value: createSecret did not finish.")
        let unreadable = Diagnosis.of(state(stages, pendingHasValue: true, logProblem: "AccessDeniedException"), secretId: "s")
        #expect(unreadable.advice[0].contains("the function's log could not be read: AccessDeniedException"))
        let unknownAge = Diagnosis.of(state(stages, pendingHasValue: true), secretId: "s")
        #expect(unknownAge.verdict == .stuck)
        #expect(unknownAge.advice[0].contains("no failure of this version is in the function's log"))
    }

    /// A failure found by a search that was cut short may not be the last one: the advice says so.
    @Test func aFailureFoundInALogReadInPartSaysALaterOneMayBeMissing() {
        let stages = [currentId: ["AWSCURRENT"], pendingId: ["AWSPENDING"]]
        let partial = Diagnosis.of(state(stages, pendingHasValue: true, steps: [failure("setSecret", "HostCommandFailed")],
                                         logProblem: "the search was incomplete (cut short)"), secretId: "s")
        #expect(partial.verdict == .stuck)
        #expect(partial.cause?.hasPrefix("setSecret failed") == true)
        #expect(partial.advice.contains("A later failure may be missing: the function's log could not be read: the search was incomplete (cut short)."))
        let whole = Diagnosis.of(state(stages, pendingHasValue: true, steps: [failure("setSecret", "HostCommandFailed")]), secretId: "s")
        #expect(!whole.advice.contains { $0.contains("may be missing") })
    }
}
