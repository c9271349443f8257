/// What `HostRunner` is doing with a command, for a caller that shows it while it happens (the
/// operator commands' progress line). Called on the thread that runs the command, in this order:
/// `sent` once, then `answered` / `stopped` per instance and `waiting` before each pause between
/// polls. Rotation steps pass none: their record is the log.
public protocol HostProgressObserver: AnyObject {
    /// SSM accepted the command for `instanceIds`.
    func sent(commandId: String, to instanceIds: [String])
    /// An instance finished; `result` says how.
    func answered(_ result: InstanceResult)
    /// The runner gave up on an instance and cancelled the command there; `reason` says why.
    func stopped(instanceId: String, reason: String)
    /// The runner is about to wait before asking again; `instanceIds` still owe an answer.
    func waiting(for instanceIds: [String])
}
