import AWS
import Rotation
import RotatorTestSupport
import Testing
@testable import Operations

/// Two hosts: one answers at once, the other never does, so HostRunner stops following it when
/// the proof's budget runs out.
final class OneSilentHost: RunCommandAPI, SSMDocumentAPI {
    static let answering = "i-0123456789abcdef0"
    static let silent = "i-0fedcba9876543210"

    func sendCommand(_ input: SendCommandInput) throws(AWSError) -> String { "cmd-1" }
    func listCommandInvocations(commandId: String) throws(AWSError) -> [String: String] {
        [OneSilentHost.answering: "Success", OneSilentHost.silent: "InProgress"]
    }
    func getCommandInvocation(commandId: String, instanceId: String) throws(AWSError) -> CommandInvocation {
        instanceId == OneSilentHost.answering
            ? CommandInvocation(status: "Success", statusDetails: "Success", responseCode: 0,
                                standardOutput: "ROTATOR-RESULT action=verify version=\(currentId) outcome=verified\n", standardError: "")
            : CommandInvocation(status: "InProgress", statusDetails: "InProgress", responseCode: -1, standardOutput: "", standardError: "")
    }
    func cancelCommand(commandId: String, instanceIds: [String]) throws(AWSError) {}
    func getDocument(name: String) throws(AWSError) -> SSMDocument? {
        SSMDocument(name: name, documentVersion: "1", documentType: "Command", status: "Active", content: TestDocument.content())
    }
}

@Suite struct HostProgressTests {
    @Test func aHostThatIsStoppedLeavesTheWaitingListAndSaysSo() throws {
        let output = Captured()
        let console = Console(json: false, progressIsTerminal: true, writeOut: { output.out += $0 }, writeErr: { output.err += $0 })
        let results = try CurrentLoginProof(ssm: OneSilentHost(), documents: [.postgres: "DocP"], verifier: DocumentVerifier(shipped: TestDocument.shipped),
                                            console: console, clock: ManualClock(nowMilliseconds: now))
            .run(secretArn: arn, currentVersionId: currentId, engine: .postgres,
                 instanceIds: [OneSilentHost.answering, OneSilentHost.silent], purpose: "doctor")
        #expect(results.map(\.status) == ["Success", "NoAnswer"])
        let drawn = output.err.split(separator: "\r\u{1B}[K").map(String.init)
        #expect(drawn.contains { $0.hasPrefix("doctor: log in with AWSCURRENT: waiting for \(OneSilentHost.silent) (") })
        #expect(drawn.contains { $0.hasPrefix("doctor: log in with AWSCURRENT: \(OneSilentHost.answering) answered: verified") })
        // The last thing shown names the stopped host as done, not as still awaited.
        #expect(drawn.last?.hasPrefix("doctor: log in with AWSCURRENT: \(OneSilentHost.silent) did not answer (") == true)
    }
}
