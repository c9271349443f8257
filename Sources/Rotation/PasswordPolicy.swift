import AWS

/// What a new password looks like: its length and the characters it may use.
///
/// The default alphabet is letters, digits and `-_.~+=:,`: none of them means anything to SQL string
/// literals, POSIX shells, PowerShell, ADO.NET/ODBC/JDBC connection strings or URLs' user info, so a
/// password survives being pasted into any of them. `EXCLUDE_CHARACTERS` narrows it further.
public struct PasswordPolicy: Sendable, Equatable {
    public static let defaultPunctuation = "-_.~+=:,"
    public static let defaultLength = 32
    public static let lengthRange = 16...128

    public let length: Int
    public let alphabet: Set<Character>

    public init(length: Int = PasswordPolicy.defaultLength, excludeCharacters: String = "") throws(RotationError) {
        guard PasswordPolicy.lengthRange.contains(length) else {
            throw .configuration("PASSWORD_LENGTH must be between \(PasswordPolicy.lengthRange.lowerBound) and \(PasswordPolicy.lengthRange.upperBound)")
        }
        let letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        let alphabet = Set(letters + PasswordPolicy.defaultPunctuation).subtracting(excludeCharacters)
        guard alphabet.count >= 10 else { throw .configuration("EXCLUDE_CHARACTERS leaves fewer than 10 characters to choose from") }
        self.length = length
        self.alphabet = alphabet
    }

    /// What to ask `GetRandomPassword` for: every printable ASCII character outside the alphabet excluded.
    public var randomPasswordRequest: PasswordRequest {
        let printable = (0x21...0x7E).map { Character(Unicode.Scalar(UInt8($0))) }
        let classes: [(Character) -> Bool] = [\.isLowercase, \.isUppercase, \.isNumber, { !$0.isLetter && !$0.isNumber }]
        return PasswordRequest(length: length, excludeCharacters: String(printable.filter { !alphabet.contains($0) }),
                               requireEachIncludedType: classes.allSatisfy { alphabet.contains(where: $0) })
    }

    /// A password we would not have asked for is rejected rather than sent to a host.
    public func admits(_ password: String) -> Bool {
        password.count == length && password.allSatisfy(alphabet.contains)
    }
}
