import AWS
import RotatorJSON
import RotatorTestSupport
import Testing
@testable import Rotation

@Suite struct StepMetricsTests {
    let secretId = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db/app-AbCdEf"
    let version = "33333333-3333-3333-3333-333333333333"

    func event(_ step: RotationStep, token: String? = nil) -> RotationEvent {
        RotationEvent(step: step, secretId: secretId, token: token ?? version, rotationToken: "rotation-token-secret")
    }

    func metricNames(_ line: JSON) -> [String] {
        (line["_aws"]?["CloudWatchMetrics"]?.arrayValue ?? []).flatMap { $0["Metrics"]?.arrayValue ?? [] }.compactMap { $0["Name"]?.stringValue }
    }

    @Test func eachStepWritesItsDurationAndARotationItsTotal() throws {
        let clock = ManualClock(nowMilliseconds: clockStart)
        let lines = LogLines()
        let metrics = StepMetrics(clock: clock, sink: { [lines] in lines.lines.append($0) })
        let started = clock.nowMilliseconds
        for step in RotationStep.allCases {
            let stepStart = clock.nowMilliseconds
            clock.sleep(milliseconds: 1_000)
            metrics.stepFinished(event(step), startedMilliseconds: stepStart, failure: nil)
        }
        let parsed = try lines.lines.map { try JSON.parse($0) }
        #expect(parsed.map { $0["Step"]?.stringValue } == RotationStep.allCases.map(\.rawValue))
        for line in parsed {
            #expect(line["StepDuration"] == .number("1000"))
            #expect(line["Outcome"] == .string("Success"))
            #expect(line["SecretId"] == .string(secretId))
            #expect(line["VersionId"] == .string(version))
            #expect(line["Reason"] == nil)
        }
        #expect(metricNames(parsed[0]) == ["StepDuration"])
        #expect(metricNames(parsed[3]) == ["StepDuration", "RotationDuration"])
        #expect(parsed[3]["RotationDuration"] == .number(String(clock.nowMilliseconds - started)))
        #expect(!lines.lines.joined().contains("rotation-token-secret"))
    }

    @Test func aFailureCountsWithItsReasonAndMessage() throws {
        let clock = ManualClock(nowMilliseconds: clockStart)
        let lines = LogLines()
        let metrics = StepMetrics(clock: clock, sink: { [lines] in lines.lines.append($0) })
        metrics.stepFinished(event(.testSecret), startedMilliseconds: clock.nowMilliseconds - 5,
                             failure: .hostCommandFailed("i-1: Failed, exit code 5"))
        let line = try JSON.parse(lines.lines[0])
        #expect(line["Outcome"] == .string("Failure"))
        #expect(line["Reason"] == .string("HostCommandFailed"))
        #expect(line["Failures"] == .number("1"))
        #expect(line["ErrorMessage"] == .string("i-1: Failed, exit code 5"))
        #expect(metricNames(line) == ["StepDuration", "Failures"])
        #expect(line["_aws"]?["CloudWatchMetrics"]?.arrayValue?[1]["Dimensions"] == .array([.array([]), .array([.string("Step"), .string("Reason")])]))
    }

    @Test func aFinishWithoutThisProcessSeeingTheStartHasNoRotationDuration() throws {
        let clock = ManualClock(nowMilliseconds: clockStart)
        let lines = LogLines()
        let metrics = StepMetrics(clock: clock, sink: { [lines] in lines.lines.append($0) })
        metrics.stepFinished(event(.createSecret, token: "44444444-4444-4444-4444-444444444444"),
                             startedMilliseconds: clock.nowMilliseconds, failure: nil)
        metrics.stepFinished(event(.finishSecret), startedMilliseconds: clock.nowMilliseconds, failure: nil)
        #expect(metricNames(try JSON.parse(lines.lines[1])) == ["StepDuration"])
    }

    @Test func theLineReadsBackAsTheStepRecordItWrote() throws {
        let clock = ManualClock(nowMilliseconds: clockStart)
        let lines = LogLines()
        let metrics = StepMetrics(clock: clock, sink: { [lines] in lines.lines.append($0) })
        metrics.stepFinished(event(.testSecret), startedMilliseconds: clock.nowMilliseconds,
                             failure: .hostCommandFailed("i-1: Failed, exit code 5"))
        metrics.stepFinished(event(.setSecret), startedMilliseconds: clock.nowMilliseconds, failure: nil)
        let records = lines.lines.compactMap { StepRecord.parse($0, secretArn: secretId) }
        #expect(records == [
            StepRecord(step: "testSecret", succeeded: false, reason: "HostCommandFailed", message: "i-1: Failed, exit code 5",
                       versionId: version, atMilliseconds: clock.nowMilliseconds),
            StepRecord(step: "setSecret", succeeded: true, reason: nil, message: nil, versionId: version, atMilliseconds: clock.nowMilliseconds),
        ])
        #expect(records[0].kind == .hostCommandFailed)
        #expect(StepRecord.parse(lines.lines[0], secretArn: secretId + "x") == nil)
    }
}
