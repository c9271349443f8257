/// The staging labels Secrets Manager's rotation protocol moves between versions of a secret.
public enum SecretStage {
    /// The version applications read, and whose password every host must accept.
    public static let current = "AWSCURRENT"
    /// The version a rotation is putting in place.
    public static let pending = "AWSPENDING"
    /// The version AWSCURRENT was on before the last rotation; Secrets Manager moves it by itself.
    public static let previous = "AWSPREVIOUS"
}
