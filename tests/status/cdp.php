<?php
/*
 * Just enough of Chromium's DevTools protocol for the status page test: a WebSocket client (RFC
 * 6455: masked text frames out, unmasked frames in, fragments joined, pings answered) speaking
 * JSON commands to one page target. Plain PHP streams, so the test needs no Node or Python.
 */
declare(strict_types=1);

final class Cdp
{
    /** @var resource */
    private $sock;
    private int $nextId = 0;
    /** Events that arrived while waiting for a command's answer, oldest first. */
    private array $events = [];

    /** Waits for the Chromium using $profileDir to publish its debugging port, then opens its page. */
    public static function launchConnect(string $profileDir, float $timeout = 30.0): self
    {
        $portFile = "$profileDir/DevToolsActivePort";
        $deadline = microtime(true) + $timeout;
        while (true) {
            $lines = is_file($portFile) ? file($portFile, FILE_IGNORE_NEW_LINES) : false;
            if ($lines !== false && count($lines) >= 1 && preg_match('/^\d+$/', $lines[0])) {
                $port = (int) $lines[0];
                $list = @file_get_contents("http://127.0.0.1:$port/json/list");
                foreach (json_decode((string) $list, true) ?: [] as $t) {
                    if (($t['type'] ?? '') === 'page' && isset($t['webSocketDebuggerUrl'])) {
                        return new self($t['webSocketDebuggerUrl']);
                    }
                }
            }
            if (microtime(true) > $deadline) {
                throw new RuntimeException("Chromium published no page target in $portFile");
            }
            usleep(100_000);
        }
    }

    public function __construct(string $wsUrl)
    {
        $u = parse_url($wsUrl);
        $hostPort = $u['host'] . ':' . $u['port'];
        $sock = stream_socket_client("tcp://$hostPort", $errno, $errstr, 10);
        if ($sock === false) {
            throw new RuntimeException("cannot connect to $wsUrl: $errstr");
        }
        $this->sock = $sock;
        $key = base64_encode(random_bytes(16));
        // No Origin header: Chromium only checks the origin of clients that send one.
        fwrite($sock, "GET {$u['path']} HTTP/1.1\r\nHost: $hostPort\r\nUpgrade: websocket\r\n"
            . "Connection: Upgrade\r\nSec-WebSocket-Key: $key\r\nSec-WebSocket-Version: 13\r\n\r\n");
        $head = '';
        while (!str_contains($head, "\r\n\r\n")) {
            $c = fread($sock, 1);
            if ($c === '' || $c === false) {
                throw new RuntimeException('the DevTools socket closed during the handshake');
            }
            $head .= $c;
        }
        $accept = base64_encode(sha1($key . '258EAFA5-E914-47DA-95CA-C5AB0DC85B11', true));
        if (!str_starts_with($head, 'HTTP/1.1 101') || !str_contains($head, $accept)) {
            throw new RuntimeException("the DevTools socket refused the upgrade: $head");
        }
    }

    /** Sends a command and returns its result; events seen meanwhile are kept for waitEvent(). */
    public function call(string $method, array $params = [], float $timeout = 30.0): array
    {
        $this->events = [];
        $id = ++$this->nextId;
        $this->send(json_encode(['id' => $id, 'method' => $method, 'params' => (object) $params], JSON_THROW_ON_ERROR));
        $deadline = microtime(true) + $timeout;
        while (true) {
            $msg = $this->receive($deadline);
            if (($msg['id'] ?? null) === $id) {
                if (isset($msg['error'])) {
                    throw new RuntimeException("$method: " . json_encode($msg['error']));
                }
                return $msg['result'] ?? [];
            }
            if (isset($msg['method'])) {
                $this->events[] = $msg;
            }
        }
    }

    public function waitEvent(string $method, float $timeout = 30.0): array
    {
        $deadline = microtime(true) + $timeout;
        while (true) {
            foreach ($this->events as $i => $e) {
                if ($e['method'] === $method) {
                    $this->events = array_slice($this->events, $i + 1);
                    return $e['params'] ?? [];
                }
            }
            $this->events = [];
            $msg = $this->receive($deadline);
            if (isset($msg['method'])) {
                $this->events[] = $msg;
            }
        }
    }

    public function waitLoad(): void
    {
        $this->waitEvent('Page.loadEventFired');
    }

    public function navigate(string $url): void
    {
        $r = $this->call('Page.navigate', ['url' => $url]);
        if (isset($r['errorText'])) {
            throw new RuntimeException("navigating to $url: {$r['errorText']}");
        }
        $this->waitLoad();
    }

    /** Evaluates a JavaScript expression in the page and returns its value as JSON gives it. */
    public function eval(string $expr): mixed
    {
        $r = $this->call('Runtime.evaluate', ['expression' => $expr, 'returnByValue' => true]);
        if (isset($r['exceptionDetails'])) {
            throw new RuntimeException("in the page: $expr: " . json_encode($r['exceptionDetails']));
        }
        return $r['result']['value'] ?? null;
    }

    public function close(): void
    {
        if (is_resource($this->sock)) {
            @fwrite($this->sock, "\x88\x80" . random_bytes(4)); // masked close frame, no payload
            fclose($this->sock);
        }
    }

    private function send(string $payload, int $opcode = 0x1): void
    {
        $len = strlen($payload);
        $head = chr(0x80 | $opcode);
        if ($len < 126) {
            $head .= chr(0x80 | $len);
        } elseif ($len < 65536) {
            $head .= chr(0x80 | 126) . pack('n', $len);
        } else {
            $head .= chr(0x80 | 127) . pack('J', $len);
        }
        $mask = random_bytes(4);
        $masked = $payload ^ str_repeat($mask, intdiv($len, 4) + 1);
        $this->writeAll($head . $mask . substr($masked, 0, $len));
    }

    private function writeAll(string $data): void
    {
        while ($data !== '') {
            $n = fwrite($this->sock, $data);
            if ($n === false || $n === 0) {
                throw new RuntimeException('the DevTools socket closed while writing');
            }
            $data = substr($data, $n);
        }
    }

    private function readExactly(int $n, float $deadline): string
    {
        $buf = '';
        while (strlen($buf) < $n) {
            $left = $deadline - microtime(true);
            if ($left <= 0) {
                throw new RuntimeException('timed out waiting for Chromium');
            }
            $r = [$this->sock];
            $w = $e = null;
            if (stream_select($r, $w, $e, (int) $left, (int) (fmod($left, 1.0) * 1e6)) === 0) {
                continue;
            }
            $c = fread($this->sock, $n - strlen($buf));
            if ($c === '' || $c === false) {
                throw new RuntimeException('the DevTools socket closed');
            }
            $buf .= $c;
        }
        return $buf;
    }

    /** The next complete JSON message from Chromium. */
    private function receive(float $deadline): array
    {
        $message = '';
        while (true) {
            [$b0, $b1] = array_values(unpack('C2', $this->readExactly(2, $deadline)));
            $opcode = $b0 & 0x0f;
            $len = $b1 & 0x7f;
            if ($len === 126) {
                $len = unpack('n', $this->readExactly(2, $deadline))[1];
            } elseif ($len === 127) {
                $len = unpack('J', $this->readExactly(8, $deadline))[1];
            }
            $mask = ($b1 & 0x80) ? $this->readExactly(4, $deadline) : null;
            $data = $len > 0 ? $this->readExactly($len, $deadline) : '';
            if ($mask !== null) {
                $data = substr($data ^ str_repeat($mask, intdiv($len, 4) + 1), 0, $len);
            }
            if ($opcode === 0x8) {
                throw new RuntimeException('Chromium closed the DevTools connection');
            }
            if ($opcode === 0x9) {
                $this->send($data, 0xA);
                continue;
            }
            if ($opcode === 0xA) {
                continue;
            }
            $message .= $data;
            if ($b0 & 0x80) {
                return json_decode($message, true, 512, JSON_THROW_ON_ERROR);
            }
        }
    }
}
