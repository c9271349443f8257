import Glibc
import Synchronization

/// One request as the test server read it off the socket.
struct ReceivedRequest: Sendable {
    var method: String
    var target: String
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    func headerValues(_ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1 with one serving thread (pthread): it handles one connection
/// at a time, keeps it alive for further requests, counts accepted connections and records
/// every request. The responder returns the raw bytes to answer, or nil to never answer.
final class TestServer: Sendable {
    typealias Responder = @Sendable (ReceivedRequest) -> [UInt8]?

    private struct State {
        var connections = 0
        var requests: [ReceivedRequest] = []
        var stopping = false
    }

    let port: Int
    private let listenFD: Int32
    private let responder: Responder
    private let state = Mutex(State())
    private let thread = Mutex<pthread_t?>(nil)

    struct SetupError: Error, CustomStringConvertible {
        let description: String
    }

    init(responder: @escaping Responder) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SetupError(description: "socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw SetupError(description: "bind/listen: errno \(errno)")
        }
        var actual = sockaddr_in()
        var actualLength = length
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &actualLength) }
        }
        port = Int(UInt16(bigEndian: actual.sin_port))
        listenFD = fd
        self.responder = responder

        var tid = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let created = pthread_create(&tid, nil, { raw in
            let server = Unmanaged<TestServer>.fromOpaque(raw!).takeRetainedValue()
            server.serve()
            return nil
        }, context)
        guard created == 0 else {
            Unmanaged<TestServer>.fromOpaque(context).release()
            close(fd)
            throw SetupError(description: "pthread_create: \(created)")
        }
        thread.withLock { $0 = tid }
    }

    /// Convenience: always answer with this status, headers and body (Content-Length added).
    convenience init(status: Int = 200, reason: String = "OK", headers: [(String, String)] = [], body: [UInt8] = []) throws {
        let bytes = TestServer.response(status: status, reason: reason, headers: headers, body: body)
        try self.init(responder: { _ in bytes })
    }

    static func response(status: Int, reason: String, headers: [(String, String)] = [], body: [UInt8] = []) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(reason)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(body.count)\r\n\r\n"
        return Array(head.utf8) + body
    }

    var url: String { "http://127.0.0.1:\(port)" }
    var connections: Int { state.withLock { $0.connections } }
    var requests: [ReceivedRequest] { state.withLock { $0.requests } }

    /// Stops the serving thread and closes the listening socket.
    func stop() {
        state.withLock { $0.stopping = true }
        if let tid = thread.withLock({ value -> pthread_t? in defer { value = nil }; return value }) {
            pthread_join(tid, nil)
            close(listenFD)
        }
    }

    private var isStopping: Bool { state.withLock { $0.stopping } }

    /// Waits up to 50 ms for `fd` to be readable.
    private func readable(_ fd: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 50) > 0
    }

    private func serve() {
        while !isStopping {
            guard readable(listenFD) else { continue }
            let client = accept(listenFD, nil, nil)
            guard client >= 0 else { continue }
            state.withLock { $0.connections += 1 }
            handle(client)
            close(client)
        }
    }

    /// Appends what the peer sent; false on end of stream, error or stop.
    private func receive(_ fd: Int32, into buffer: inout [UInt8]) -> Bool {
        while true {
            if isStopping { return false }
            guard readable(fd) else { continue }
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return false }
            buffer.append(contentsOf: chunk[..<count])
            return true
        }
    }

    private func handle(_ fd: Int32) {
        var buffer: [UInt8] = []
        let separator: [UInt8] = [13, 10, 13, 10]
        while true {
            var headEnd: Int? = nil
            while true {
                if buffer.count >= 4 {
                    headEnd = (0...(buffer.count - 4)).first { buffer[$0..<$0 + 4].elementsEqual(separator) }
                }
                if headEnd != nil { break }
                guard receive(fd, into: &buffer) else { return }
            }
            let head = String(decoding: buffer[..<headEnd!], as: UTF8.self)
            var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
            let requestLine = lines.removeFirst().split(separator: " ").map(String.init)
            var headers: [(name: String, value: String)] = []
            for line in lines {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let value = line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
                headers.append((String(line[..<colon]), String(value)))
            }
            let contentLength = headers.first { $0.name.lowercased() == "content-length" }.flatMap { Int($0.value) } ?? 0
            let total = headEnd! + 4 + contentLength
            while buffer.count < total {
                guard receive(fd, into: &buffer) else { return }
            }
            let request = ReceivedRequest(method: requestLine.first ?? "", target: requestLine.count > 1 ? requestLine[1] : "",
                                          headers: headers, body: Array(buffer[(headEnd! + 4)..<total]))
            buffer.removeFirst(total)
            state.withLock { $0.requests.append(request) }
            guard let answer = responder(request) else {
                // Never answer: hold the connection until the client gives up.
                var ignored: [UInt8] = []
                while receive(fd, into: &ignored) { ignored.removeAll() }
                return
            }
            var sent = 0
            while sent < answer.count {
                let n = answer[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return }
                sent += n
            }
        }
    }
}

/// A port on 127.0.0.1 where nothing listens: bound once, then closed.
func closedPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    var actual = sockaddr_in()
    var actualLength = length
    _ = withUnsafeMutablePointer(to: &actual) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &actualLength) }
    }
    return Int(UInt16(bigEndian: actual.sin_port))
}
