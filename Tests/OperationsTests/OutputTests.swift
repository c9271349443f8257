import AWS
import Rotation
import RotatorJSON
import Testing
@testable import Operations

@Suite struct OutputTests {
    @Test func statusLinesShowScheduleVersionsAndTheDiagnosis() {
        let s = state([currentId: ["AWSCURRENT"], pendingId: ["AWSPENDING"], "33333333-3333-3333-3333-333333333333": ["AWSPREVIOUS"]],
                      created: [currentId: now - 86_400_000], pendingHasValue: true,
                      steps: [failure("setSecret", "HostCommandFailed", message: "i-1: Failed")])
        let lines = StatusReport(state: s, secretId: "db/app").lines
        #expect(lines[0] == "secret          \(arn)")
        #expect(lines[1] == "rotation        enabled: rate(30 days), window 3h")
        #expect(lines[2] == "function        \(function)")
        #expect(lines[3] == "last rotated    2027-01-14 08:00:00 UTC")
        #expect(lines[4] == "next rotation   -")
        #expect(lines[5] == "versions")
        // AWSCURRENT first, then AWSPENDING, then AWSPREVIOUS.
        #expect(lines[6].hasPrefix("  \(currentId)    AWSCURRENT") && lines[6].hasSuffix("created 2027-01-14 08:00:00 UTC"))
        #expect(lines[7].hasPrefix("  \(pendingId)    AWSPENDING"))
        #expect(lines[8].contains("AWSPREVIOUS"))
        #expect(lines[9].hasPrefix("state           STUCK: version \(pendingId) holds AWSPENDING but not AWSCURRENT"))
        #expect(lines[10].hasPrefix("last failure    setSecret failed at"))
        #expect(lines[11].hasPrefix("what to do      - A host could not take"))
        #expect(lines[12].hasPrefix("                - Then "))
    }

    @Test func statusJSONCarriesTheSameFacts() throws {
        let s = state([currentId: ["AWSCURRENT"]], enabled: false, lambda: nil)
        let json = try JSON.parse(StatusReport(state: s, secretId: "db/app").json.serialized)
        #expect(json["secretArn"] == .string(arn))
        #expect(json["rotationEnabled"] == .bool(false))
        #expect(json["rotationFunction"] == .null)
        #expect(json["schedule"] == .string("rate(30 days)"))
        #expect(json["pendingVersion"] == .null)
        #expect(json["currentVersion"] == .string(currentId))
        #expect(json["verdict"] == .string("not-configured"))
        #expect(json["versions"]?.arrayValue?.count == 1)
        #expect(json["lastFailure"] == .null)
    }

    @Test func checkLinesAreOneLineWithTheFix() {
        #expect(Check.pass("secret JSON", "password present").line == "PASS  secret JSON                   password present")
        #expect(Check.fail("SSM document", "Doc does not exist", fix: "deploy").line
            == "FAIL  SSM document                  Doc does not exist -> fix: deploy")
        #expect(Check.skip("instances", "needs x").json == .object([("check", .string("instances")), ("result", .string("skip")),
                                                                    ("detail", .string("needs x")), ("fix", .null)]))
    }

    @Test func progressRedrawsOnATerminalAndWritesMilestonesOtherwise() {
        final class Box: @unchecked Sendable { var out = ""; var err = "" }
        let terminal = Box(), plain = Box()
        let onTerminal = Console(json: false, progressIsTerminal: true, writeOut: { terminal.out += $0 }, writeErr: { terminal.err += $0 })
        let onFile = Console(json: false, progressIsTerminal: false, writeOut: { plain.out += $0 }, writeErr: { plain.err += $0 })
        for console in [onTerminal, onFile] {
            console.progress("verify: sent", milestone: true)
            console.progress("verify: waiting (3 s)", milestone: false)
            console.line("PASS  x")
        }
        #expect(terminal.err == "\r\u{1B}[Kverify: sent\r\u{1B}[Kverify: waiting (3 s)\r\u{1B}[K")
        #expect(terminal.out == "PASS  x\n")
        #expect(plain.err == "verify: sent\n")
        #expect(plain.out == "PASS  x\n")
    }

    @Test func jsonModePrintsOnlyTheDocument() {
        final class Box: @unchecked Sendable { var out = "" }
        let box = Box()
        let console = Console(json: true, progressIsTerminal: false, writeOut: { box.out += $0 }, writeErr: { _ in })
        console.line("PASS  x")
        console.document(.object([("passed", .bool(true))]))
        #expect(box.out == "{\"passed\":true}\n")
    }

    @Test func stepRecordsAreReadFromTheFunctionsMetricLinesOnly() {
        let line = #"{"_aws":{"Timestamp":1800000000000,"CloudWatchMetrics":[]},"Step":"testSecret","Outcome":"Failure","Reason":"HostCommandFailed","RotatorStep":"1","SecretId":"\#(arn)","VersionId":"\#(pendingId)","ErrorMessage":"i-1: Failed"}"#
        #expect(StepRecord.parse(line, secretArn: arn) == StepRecord(step: "testSecret", succeeded: false, reason: "HostCommandFailed",
                                                                     message: "i-1: Failed", versionId: pendingId, atMilliseconds: now))
        #expect(StepRecord.parse(line, secretArn: arn + "x") == nil)
        #expect(StepRecord.parse(#"{"level":"ERROR","message":"step failed","secretId":"\#(arn)"}"#, secretArn: arn) == nil)
        #expect(StepRecord.parse("INFO step failed secretId=\(arn)", secretArn: arn) == nil)
    }
}
