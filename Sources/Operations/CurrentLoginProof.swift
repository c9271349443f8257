import AWS
import RotatorLogging
import Rotation

/// Proof that every host's login accepts the password of the AWSCURRENT version: the document's
/// `verify` action, the same fresh login testSecret uses (docs/host-contract.md). doctor runs it as
/// its dry run; cancel removes AWSPENDING only after it passed on every host.
struct CurrentLoginProof {
    /// Long enough for SSM to deliver and for the document's own 120 s limit.
    static let budgetMilliseconds: Int64 = 180_000
    /// The progress line says what HostRunner's log would; the operator reads the results, not the log.
    private static let silentLogger = Logger(format: .text, sink: { _ in })

    let ssm: HostRunner.SSM
    /// The engine's document as the function's environment names it, already proven by `verifier`
    /// (the caller refuses a foreign one before it gets here; HostRunner sends only through a proven one).
    let documents: [Engine: String]
    let verifier: DocumentVerifier
    let console: Console
    let clock: MillisecondClock

    /// `action` is `verify` for the proof; cancel's settle `set`s AWSCURRENT once more (CancelCommand).
    func run(secretArn: String, currentVersionId: String, engine: Engine, instanceIds: [String],
             purpose: String, action: HostAction = .verify) throws(RotationError) -> [InstanceResult] {
        let command = try HostCommand(action: action, secretArn: secretArn, versionId: currentVersionId)
        let doing = action == .verify ? "log in with AWSCURRENT" : "set AWSCURRENT again"
        let progress = HostProgress(console: console, clock: clock, label: "\(purpose): \(doing)", instanceIds: instanceIds)
        // Each command names the document version the check read (DocumentVerifier).
        let runner = HostRunner(ssm: ssm, documents: documents, verifier: verifier, clock: clock, observer: progress)
        return try runner.run(command, engine: engine, on: instanceIds, comment: "rotator \(purpose): \(action.rawValue) AWSCURRENT",
                              untilMilliseconds: clock.nowMilliseconds + CurrentLoginProof.budgetMilliseconds,
                              logger: CurrentLoginProof.silentLogger)
    }
}
