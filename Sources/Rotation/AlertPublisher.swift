import AWS
import RotatorLogging

/// Tells people that a rotation failed, through SNS when a topic is configured.
///
/// An alert that cannot be sent is logged, never thrown: the step's own failure is what Secrets
/// Manager and the operator must see.
public final class AlertPublisher {
    private let sns: NotificationAPI
    private let topicArn: String?

    public init(sns: NotificationAPI, topicArn: String?) {
        self.sns = sns
        self.topicArn = topicArn.flatMap { $0.isEmpty ? nil : $0 }
    }

    public func rotationFailed(secretArn: String, step: RotationStep, reason: String, details: [String], logger: Logger) {
        guard let topicArn else { return }
        let name = secretArn.split(separator: ":").last.map(String.init) ?? secretArn
        // SNS subjects: at most 100 printable ASCII characters, no line breaks.
        let subject = String("Secret rotation failed: \(name) (\(step.rawValue))"
            .unicodeScalars.map { (0x20...0x7E).contains($0.value) ? Character($0) : "?" }.prefix(100))
        let message = (["Rotation of \(secretArn) failed in step \(step.rawValue).", "", reason] + details.map { "- " + $0 })
            .joined(separator: "\n")
        do {
            try sns.publish(topicArn: topicArn, subject: subject, message: message)
            logger.info("alert published", ("topicArn", topicArn))
        } catch {
            logger.error("could not publish the alert", ("topicArn", topicArn), ("reason", error.description))
        }
    }
}
