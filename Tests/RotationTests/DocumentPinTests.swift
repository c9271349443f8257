import AWS
import HTTP
import RotatorJSON
import RotatorLogging
import RotatorTestSupport
import Testing
@testable import Rotation

/// The rotation function sends commands only through a document version proven to be the one this
/// rotator ships, names that version, and reads each document once per process
/// (docs/THREAT-MODEL.md: a principal that may update the stack's documents).
@Suite struct DocumentPinTests {
    static let environment = ["AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
                              "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"]

    static func ok(_ body: JSON) -> ScriptedHTTPClient.Step {
        .respond(HTTPResponse(status: 200, headers: [("Content-Type", "application/x-amz-json-1.1")], body: Array(body.serialized.utf8)))
    }

    static func document(_ content: String, version: String) -> ScriptedHTTPClient.Step {
        ok(.object([("Name", .string("RotatorPostgres")), ("DocumentVersion", .string(version)), ("DocumentType", .string("Command")),
                    ("Status", .string("Active")), ("DocumentFormat", .string("JSON")), ("Content", .string(content))]))
    }

    /// SSM's answers to one command that the host ran: sent, listed as finished, its output.
    static func commandRan(_ action: HostAction) -> [ScriptedHTTPClient.Step] {
        [ok(.object([("Command", .object([("CommandId", .string("c-1"))]))])),
         ok(.object([("CommandInvocations", .array([.object([("InstanceId", .string(instance)), ("Status", .string("Success"))])]))])),
         ok(.object([("Status", .string("Success")), ("ResponseCode", .integer(0)),
                     ("StandardOutputContent", .string("ROTATOR-RESULT action=\(action.rawValue) version=\(version) outcome=verified\n"))]))]
    }

    static let instance = "i-0123456789abcdef0"
    static let version = "11111111-2222-3333-4444-555555555555"
    static let secretArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db/app-AbCdEf"

    /// One process: the HTTP script and the verifier outlive each invocation's runner, as in main.swift.
    final class Process {
        let clock = ManualClock(nowMilliseconds: clockStart)
        let http: ScriptedHTTPClient
        let verifier = DocumentVerifier(shipped: TestDocument.shipped)

        init(_ script: [ScriptedHTTPClient.Step]) { http = ScriptedHTTPClient(script, clock: clock) }

        /// One invocation: its own SSM client and runner, as the function makes them per invocation.
        func runVerify() throws(RotationError) -> [InstanceResult] {
            let configuration = try! AWSConfiguration(environment: DocumentPinTests.environment)
            let ssm = SSMClient(AWSServiceClient(service: .ssm, configuration: configuration, http: http, clock: clock,
                                                 deadlineMilliseconds: clock.nowMilliseconds + 60_000))
            let runner = HostRunner(ssm: ssm, documents: [.postgres: "RotatorPostgres"], verifier: verifier, clock: clock,
                                    pollInitialMilliseconds: 0)
            return try runner.run(try HostCommand(action: .verify, secretArn: DocumentPinTests.secretArn, versionId: DocumentPinTests.version),
                                  engine: .postgres, on: [DocumentPinTests.instance], step: .testSecret,
                                  untilMilliseconds: clock.nowMilliseconds + 30_000, logger: Logger(format: .json, sink: { _ in }))
        }

        var operations: [String] { http.requests.map { $0.headers.first { $0.name == "X-Amz-Target" }?.value ?? "?" } }
        func bodies(of operation: String) -> [JSON] {
            http.requests.filter { $0.headers.contains { $0.name == "X-Amz-Target" && $0.value == "AmazonSSM.\(operation)" } }
                .compactMap { try? JSON.parse($0.body) }
        }
    }

    @Test func aWarmProcessReadsTheDocumentOnceAndEveryCommandNamesTheVersionRead() throws {
        let process = Process([Self.document(TestDocument.content(), version: "3")] + Self.commandRan(.verify) + Self.commandRan(.verify))
        #expect(try process.runVerify().allSatisfy(\.succeeded))
        #expect(try process.runVerify().allSatisfy(\.succeeded))
        #expect(process.operations == ["AmazonSSM.GetDocument", "AmazonSSM.SendCommand", "AmazonSSM.ListCommandInvocations",
                                       "AmazonSSM.GetCommandInvocation", "AmazonSSM.SendCommand", "AmazonSSM.ListCommandInvocations",
                                       "AmazonSSM.GetCommandInvocation"])
        // The default version is read (no DocumentVersion asked for), and the one it answered is named.
        #expect(process.bodies(of: "GetDocument").map { $0["DocumentVersion"] } == [nil])
        #expect(process.bodies(of: "GetDocument").map { $0["Name"] } == [.string("RotatorPostgres")])
        let sends = process.bodies(of: "SendCommand")
        #expect(sends.count == 2)
        #expect(sends.allSatisfy { $0["DocumentName"] == .string("RotatorPostgres") && $0["DocumentVersion"] == .string("3") })
    }

    @Test func aDocumentThatIsNotTheShippedOneIsRefusedBeforeAnyCommand() throws {
        let process = Process([Self.document(TestDocument.foreign, version: "4"), Self.document(TestDocument.foreign, version: "4")])
        for _ in 0..<2 {
            let error = caught { () throws(RotationError) in _ = try process.runVerify() }
            guard case .documentRefused(let message) = error else {
                Issue.record("expected documentRefused, got \(String(describing: error))")
                return
            }
            #expect(error?.errorType == "DocumentRefused")
            #expect(message.contains("the document RotatorPostgres is not the one this rotator ships for postgres (its script has sha256 "))
            #expect(message.contains("in its version 4; nothing was sent to any host"))
        }
        // A refusal is not remembered: each step reads again, so restoring the default version is the fix.
        #expect(process.operations == ["AmazonSSM.GetDocument", "AmazonSSM.GetDocument"])
    }

    @Test func aProvenVersionThatWasDeletedIsReadAgainByTheNextCommand() throws {
        let gone = ScriptedHTTPClient.Step.respond(HTTPResponse(
            status: 400, headers: [("Content-Type", "application/x-amz-json-1.1")],
            body: Array(#"{"__type":"InvalidDocumentVersion","message":"The document version is not valid or does not exist."}"#.utf8)))
        let process = Process([Self.document(TestDocument.content(), version: "3"), gone,
                               Self.document(TestDocument.content(), version: "5")] + Self.commandRan(.verify))
        let error = caught { () throws(RotationError) in _ = try process.runVerify() }
        #expect(error?.errorType == "AWSError")
        #expect(try process.runVerify().allSatisfy(\.succeeded))
        #expect(process.bodies(of: "SendCommand").map { $0["DocumentVersion"] } == [.string("3"), .string("5")])
    }

    // Through the rotation steps: the failure is the step's, alerted, and no host is touched.

    @Test func setSecretThroughAForeignDocumentChangesNoHostAndAlerts() throws {
        let w = World()
        w.ssm.documentContent = TestDocument.foreign
        w.ssm.documentVersion = "2"
        try w.createPendingVersion()
        let error = caught { () throws(RotationError) in try w.run(.setSecret) }
        #expect(error?.kind == .documentRefused)
        #expect(w.ssm.sent.isEmpty)
        #expect(w.ssm.hosts.values.allSatisfy { $0.password == oldPassword })
        #expect(w.secrets.stages(of: token) == ["AWSPENDING"])
        let alert = try #require(w.sns.published.first)
        #expect(w.sns.published.count == 1)
        #expect(alert.message.contains("DocumentRefused: the document RotatorPostgres is not the one this rotator ships"))
        let pending = try #require(w.pendingPassword())
        #expect(!alert.message.contains(pending) && !alert.message.contains(oldPassword) && !alert.message.contains("rotation-token-secret"))
    }

    @Test func aRotationReadsTheDocumentOnceAndNamesItsVersionInEveryCommand() throws {
        let w = World()
        w.ssm.documentVersion = "7"
        w.secrets.startRotation(token: token)
        for step in RotationStep.allCases { try w.run(step) }
        #expect(w.ssm.documentReads == ["RotatorPostgres"])
        // setSecret's set, testSecret's verify, finishSecret's settle of the new AWSCURRENT.
        #expect(w.ssm.sent.count == 3)
        #expect(w.ssm.sent.allSatisfy { $0.input.documentName == "RotatorPostgres" && $0.input.documentVersion == "7" })
    }
}
