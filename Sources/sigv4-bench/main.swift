// Signs the requests of a file over and over, with no I/O in the loop, and prints the rate: our half
// of the benchmark's SigV4 figure (bench/sigv4_botocore.py is botocore's half, on the same file).
//
// Usage: sigv4-bench REQUESTS.json SIGNATURES
// Prints one JSON object: the Authorization header of each request signed at the file's
// `checkTime` (so the benchmark can prove both signers signed the same thing), and the rate per
// second of CPU time.
// Like botocore's SigV4Auth.add_auth, every signature reads the clock and formats the time afresh.
import RotatorJSON
import SigV4
#if canImport(Glibc)
import Glibc
#endif

func fail(_ message: String) -> Never {
    let line = "sigv4-bench: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(2)
}

func readFile(_ path: String) -> [UInt8] {
    guard let file = fopen(path, "rb") else { fail("cannot open \(path)") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let count = fread(&buffer, 1, buffer.count, file)
        if count == 0 { break }
        bytes += buffer[..<count]
    }
    return bytes
}

/// CPU time of this process: the rate then does not depend on what else the machine runs.
func cpuSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

let arguments = CommandLine.arguments
guard arguments.count == 3, let signatures = Int(arguments[2]), signatures > 0 else {
    fail("usage: sigv4-bench REQUESTS.json SIGNATURES")
}
let file: JSON
do { file = try JSON.parse(readFile(arguments[1])) } catch { fail("\(arguments[1]): \(error)") }

guard let credentialFields = file["credentials"], let accessKeyId = credentialFields["accessKeyId"]?.stringValue,
      let secretAccessKey = credentialFields["secretAccessKey"]?.stringValue,
      let region = file["region"]?.stringValue, let checkTime = file["checkTime"]?.stringValue.flatMap(AmzTime.init(amzDate:)),
      let requestList = file["requests"]?.arrayValue, !requestList.isEmpty else {
    fail("the file needs credentials, region, checkTime and requests")
}
let credentials = Credentials(accessKeyId: accessKeyId, secretAccessKey: secretAccessKey,
                              sessionToken: credentialFields["sessionToken"]?.stringValue)

let requests: [(SigV4Signer, SigningRequest)] = requestList.map { entry in
    guard let service = entry["service"]?.stringValue, let method = entry["method"]?.stringValue,
          let path = entry["path"]?.stringValue, let headerList = entry["headers"]?.arrayValue,
          let body = entry["body"]?.stringValue else { fail("a request needs service, method, path, headers, body") }
    let headers = headerList.map { pair -> (name: String, value: String) in
        guard let parts = pair.arrayValue, parts.count == 2, let name = parts[0].stringValue, let value = parts[1].stringValue else {
            fail("a header is a [name, value] pair")
        }
        return (name, value)
    }
    return (SigV4Signer(credentials: credentials, region: region, service: service),
            SigningRequest(method: method, path: path, headers: headers, body: Array(body.utf8)))
}

func authorization(_ signed: [(name: String, value: String)]) -> String {
    signed.last(where: { $0.name == "Authorization" })?.value ?? ""
}

let check = requests.map { JSON.string(authorization($0.0.sign($0.1, at: checkTime))) }

var sink = 0   // keeps the optimizer from dropping signatures nobody reads
let start = cpuSeconds()
for n in 0..<signatures {
    let (signer, request) = requests[n % requests.count]
    sink &+= authorization(signer.sign(request, at: AmzTime(epochSeconds: time(nil)))).utf8.count
}
let seconds = cpuSeconds() - start

print(JSON.object([
    ("authorizations", .array(check)),
    ("signatures", .integer(signatures)),
    ("seconds", .number(String(seconds))),
    ("perSecond", .number(String(Double(signatures) / seconds))),
    ("checksum", .integer(sink)),
]).serialized)
