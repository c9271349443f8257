import AWS
import RotatorJSON
import LambdaRuntime
import RotatorLogging
import Rotation

/// Turns one Runtime API event into one rotation step and its outcome into the Lambda answer.
struct RotationHandler: InvocationHandler {
    /// The rotator for one invocation, given its deadline: its AWS calls and host commands stop in time.
    let rotator: (_ deadlineMilliseconds: Int64) -> Rotator
    let clock: MillisecondClock
    let metrics: StepMetrics

    func handle(_ invocation: Invocation, logger: Logger) throws(FunctionError) -> JSON {
        let event: RotationEvent
        do {
            event = try RotationEvent.parse(invocation.body)
        } catch {
            logger.error("event rejected", ("errorType", error.errorType), ("reason", error.description))
            throw FunctionError(errorType: error.errorType, errorMessage: error.description)
        }
        // The event is valid from here on: its SecretId and step may be logged, its RotationToken never.
        let log = logger.with(("step", event.step.rawValue), ("secretId", event.secretId))
        let started = clock.nowMilliseconds
        do {
            try rotator(invocation.deadlineMilliseconds).rotate(event, logger: logger)
            log.info("step succeeded", ("durationMs", String(clock.nowMilliseconds - started)))
            metrics.stepFinished(event, startedMilliseconds: started, failure: nil)
            return .object([])
        } catch {
            log.error("step failed", ("errorType", error.errorType), ("reason", error.description),
                      ("durationMs", String(clock.nowMilliseconds - started)))
            metrics.stepFinished(event, startedMilliseconds: started, failure: error)
            throw FunctionError(errorType: error.errorType, errorMessage: error.description)
        }
    }
}
