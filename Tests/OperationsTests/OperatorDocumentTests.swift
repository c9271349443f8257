import AWS
@testable import Rotation
import RotatorTestSupport
import Testing
@testable import Operations

/// What these tests ship for postgres: TestDocument's default document.
extension TestDocument {
    static var shipped: [Engine: ShippedDocument] {
        // swiftlint:disable:next force_try - the default document is readable; RotationTests' ShippedDocumentTests say so
        [.postgres: try! ShippedDocument.of(content: content())]
    }
}

/// The operator commands prove the document as the function does (Rotation's ShippedDocumentTests):
/// a foreign document is refused and nothing is sent to any host, and every command names the
/// version the proof read.
@Suite struct OperatorDocumentTests {
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
