/// An SSM agent's version as DescribeInstanceInformation reports it (`3.3.2746.0`), compared number
/// by number: `3.3.10.0` is newer than `3.3.9.0`, which a comparison of the strings gets wrong.
struct SSMAgentVersion: Comparable, CustomStringConvertible, Sendable {
    let parts: [Int]

    /// The oldest agent that runs the rotation documents: they declare every parameter with
    /// `interpolationType: ENV_VAR` and the scripts read `SSM_<Name>` environment variables, which
    /// agents before 3.3.2746.0 do not set (the script exits 2, and so does the restore).
    static let minimumForDocuments = SSMAgentVersion("3.3.2746.0")!

    /// `nil` unless it is dot-separated decimal numbers.
    init?(_ text: String) {
        let fields = text.split(separator: ".", omittingEmptySubsequences: false)
        var parts: [Int] = []
        for field in fields {
            guard !field.isEmpty, field.utf8.count <= 9, field.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                  let number = Int(field) else { return nil }
            parts.append(number)
        }
        self.parts = parts
    }

    var description: String { parts.map(String.init).joined(separator: ".") }

    /// Missing trailing numbers count as 0 (`3.3` is `3.3.0.0`).
    static func < (lhs: SSMAgentVersion, rhs: SSMAgentVersion) -> Bool {
        for index in 0..<max(lhs.parts.count, rhs.parts.count) {
            let left = index < lhs.parts.count ? lhs.parts[index] : 0
            let right = index < rhs.parts.count ? rhs.parts[index] : 0
            if left != right { return left < right }
        }
        return false
    }

    static func == (lhs: SSMAgentVersion, rhs: SSMAgentVersion) -> Bool { !(lhs < rhs) && !(rhs < lhs) }
}
