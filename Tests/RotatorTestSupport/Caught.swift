/// Runs `body` and returns the error it threw, or nil when it returned. The error keeps its thrown
/// type (no cast), so one helper serves every typed-throws API a test compares or inspects errors of.
public func caught<E: Error>(_ body: () throws(E) -> Void) -> E? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}
