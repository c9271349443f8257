/// The identifiers that cross into an SSM command, checked exactly as the documents' `allowedPattern`s
/// in `template.yaml` check them (docs/host-contract.md), so SSM never gets to reject what we send.
public enum Identifiers {
    static func isAlphanumeric(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c)
    }

    /// `^[A-Za-z0-9-]{32,64}$`
    public static func isVersionId(_ s: String) -> Bool {
        (32...64).contains(s.unicodeScalars.count) && s.unicodeScalars.allSatisfy { isAlphanumeric($0) || $0 == "-" }
    }

    /// `^(i|mi)-[0-9a-f]{8,17}$`
    public static func isInstanceId(_ s: String) -> Bool {
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0] == "i" || parts[0] == "mi" else { return false }
        return (8...17).contains(parts[1].unicodeScalars.count)
            && parts[1].unicodeScalars.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) }
    }

    /// `^arn:aws[a-z-]{0,16}:secretsmanager:[a-z0-9-]{1,32}:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}$`
    public static func isSecretArn(_ s: String) -> Bool {
        let parts = s.split(separator: ":", omittingEmptySubsequences: false).map { Array($0.unicodeScalars) }
        guard parts.count == 7, String(String.UnicodeScalarView(parts[0])) == "arn" else { return false }
        let partition = parts[1], service = parts[2], region = parts[3], account = parts[4], kind = parts[5], name = parts[6]
        let lowerOrDash: (Unicode.Scalar) -> Bool = { ("a"..."z").contains($0) || $0 == "-" }
        return partition.starts(with: "aws".unicodeScalars) && partition.count <= 19 && partition.dropFirst(3).allSatisfy(lowerOrDash)
            && String(String.UnicodeScalarView(service)) == "secretsmanager"
            && (1...32).contains(region.count) && region.allSatisfy { lowerOrDash($0) || ("0"..."9").contains($0) }
            && account.count == 12 && account.allSatisfy { ("0"..."9").contains($0) }
            && String(String.UnicodeScalarView(kind)) == "secret"
            && (1...512).contains(name.count) && name.allSatisfy { isAlphanumeric($0) || "/_+=.@-".unicodeScalars.contains($0) }
    }

    /// For error messages about untrusted input: quoted, cut short, control characters escaped, and
    /// the quote and backslash too, so a name cannot seem to end its quotes and go on as our text.
    public static func quoted(_ s: String, limit: Int = 64) -> String {
        let shown = shownOnOneLine(String(String.UnicodeScalarView(s.unicodeScalars.prefix(limit))), alsoEscaping: "\"\\")
        return "\"" + shown + (s.unicodeScalars.count > limit ? "…" : "") + "\""
    }

    /// Untrusted text (a name from the secret, a host's error output that echoes the application's
    /// object names) as it may appear in a log line or an alert: every control character escaped,
    /// C0 and DEL, C1 (U+009B starts a terminal escape as ESC [ does) and the Unicode line and
    /// paragraph separators, so the text can neither start a line of its own nor drive the terminal
    /// of whoever reads it.
    public static func shownOnOneLine(_ s: String, alsoEscaping extra: String = "") -> String {
        var out = ""
        for scalar in s.unicodeScalars {
            let control = scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar == "\u{2028}" || scalar == "\u{2029}"
            out += control || extra.unicodeScalars.contains(scalar) ? scalar.escaped(asASCII: true) : String(scalar)
        }
        return out
    }
}
