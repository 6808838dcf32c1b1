<?php
/*
 * apcdb status page: what the store behind this PHP looks like, and its entries, with delete and
 * clear actions. One file, no external assets (the server may have no internet): the charts are
 * SVG written here, and the page runs no script at all.
 *
 * Protection (README "Status page"): it serves nothing until a password is configured, either in
 * the environment (APCDB_STATUS_PASSWORD, optionally APCDB_STATUS_USER) or in a config file
 * (config.php beside this file, or /etc/apcdb/status.php) returning
 *     ['password' => '...', 'user' => 'apcdb']
 * The password may be given as the output of password_hash(). Login is HTTP Basic; actions are
 * POST only and carry a token bound to the PHP session.
 */
declare(strict_types=1);

const STATUS_DEFAULT_USER = 'apcdb';
const STATUS_PAGE_SIZE = 50;
const STATUS_MAX_KEY_LEN = 65535; // SPEC §10: MAX_KEY_LEN
const STATUS_CONFIG_FILES = [__DIR__ . '/config.php', '/etc/apcdb/status.php'];

/** Escapes user data (keys above all) for HTML text and attribute values. */
function h(string $s): string
{
    return htmlspecialchars($s, ENT_QUOTES | ENT_SUBSTITUTE | ENT_HTML5, 'UTF-8');
}

/** A plain-text answer that ends the request (refusals and errors). */
function status_refuse(int $code, string $message, array $headers = []): never
{
    http_response_code($code);
    header('Content-Type: text/plain; charset=UTF-8');
    header('Cache-Control: no-store');
    foreach ($headers as $hd) {
        header($hd);
    }
    echo $message, "\n";
    exit;
}

/** ['user' => string, 'password' => string] or null when no password is configured anywhere. */
function status_config(): ?array
{
    $env = getenv('APCDB_STATUS_PASSWORD');
    if ($env === false && isset($_SERVER['APCDB_STATUS_PASSWORD'])) {
        $env = (string) $_SERVER['APCDB_STATUS_PASSWORD']; // fastcgi_param / SetEnv
    }
    if (is_string($env) && $env !== '') {
        $user = getenv('APCDB_STATUS_USER');
        if ($user === false) {
            $user = (string) ($_SERVER['APCDB_STATUS_USER'] ?? '');
        }
        return ['user' => $user !== '' ? $user : STATUS_DEFAULT_USER, 'password' => $env];
    }
    foreach (STATUS_CONFIG_FILES as $file) {
        if (!is_file($file)) {
            continue;
        }
        $c = include $file;
        if (!is_array($c) || !is_string($c['password'] ?? null) || $c['password'] === '') {
            status_refuse(500, "apcdb status: $file must return ['password' => '...'] with a non-empty password.");
        }
        $user = is_string($c['user'] ?? null) && $c['user'] !== '' ? $c['user'] : STATUS_DEFAULT_USER;
        return ['user' => $user, 'password' => $c['password']];
    }
    return null;
}

/** The Basic credentials the client sent, from whichever variable this SAPI fills. */
function status_credentials(): ?array
{
    if (isset($_SERVER['PHP_AUTH_USER'])) {
        return [(string) $_SERVER['PHP_AUTH_USER'], (string) ($_SERVER['PHP_AUTH_PW'] ?? '')];
    }
    // Behind some web servers only the raw header arrives (e.g. a rewrite rule passing it along).
    $raw = $_SERVER['HTTP_AUTHORIZATION'] ?? $_SERVER['REDIRECT_HTTP_AUTHORIZATION'] ?? '';
    if (is_string($raw) && stripos($raw, 'basic ') === 0) {
        $dec = base64_decode(substr($raw, 6), true);
        if ($dec !== false && str_contains($dec, ':')) {
            return explode(':', $dec, 2);
        }
    }
    return null;
}

function status_password_ok(string $given, string $configured): bool
{
    $info = password_get_info($configured);
    if ($info['algo'] !== null && $info['algo'] !== 0) {
        return password_verify($given, $configured);
    }
    return hash_equals($configured, $given);
}

function status_authenticate(): string
{
    $config = status_config();
    if ($config === null) {
        status_refuse(403, "apcdb status: no password is configured, so this page is disabled.\n"
            . "Set the environment variable APCDB_STATUS_PASSWORD (e.g. env[APCDB_STATUS_PASSWORD] in the\n"
            . "PHP-FPM pool) or create " . STATUS_CONFIG_FILES[0] . " or " . STATUS_CONFIG_FILES[1] . "\n"
            . "returning ['password' => '...']. There is no default password.");
    }
    $cred = status_credentials();
    $ok = $cred !== null && hash_equals($config['user'], $cred[0])
        && status_password_ok($cred[1], $config['password']);
    if (!$ok) {
        status_refuse(401, $cred === null ? 'apcdb status: log in.' : 'apcdb status: wrong user name or password.',
            ['WWW-Authenticate: Basic realm="apcdb status", charset="UTF-8"']);
    }
    return $config['user'];
}

/** Starts the page's own session and returns its CSRF token, created on first use. */
function status_session_token(string $user): string
{
    $https = ($_SERVER['HTTPS'] ?? '') !== '' && ($_SERVER['HTTPS'] ?? '') !== 'off';
    if (!function_exists('session_start')) {
        status_refuse(500, 'apcdb status: this PHP has no session extension, which the form tokens need.');
    }
    $path = rtrim(str_replace('\\', '/', dirname($_SERVER['SCRIPT_NAME'] ?? '/')), '/') . '/';
    session_name('apcdb_status');
    session_set_cookie_params(['path' => $path, 'httponly' => true, 'secure' => $https, 'samesite' => 'Strict']);
    // Refuse session ids the server did not issue, and never take one from the URL.
    ini_set('session.use_strict_mode', '1');
    ini_set('session.use_only_cookies', '1');
    ini_set('session.use_trans_sid', '0');
    if (!session_start()) {
        status_refuse(500, 'apcdb status: the PHP session could not be started (session.save_path?).');
    }
    // A session that was opened under another login gets a fresh id and token.
    if (($_SESSION['apcdb_user'] ?? null) !== $user || !is_string($_SESSION['apcdb_csrf'] ?? null)) {
        session_regenerate_id(true);
        $_SESSION = ['apcdb_user' => $user, 'apcdb_csrf' => bin2hex(random_bytes(32))];
    }
    $token = $_SESSION['apcdb_csrf'];
    session_write_close(); // do not hold the session lock while the page reads the store
    return $token;
}

/** Runs $f with PHP warnings collected instead of printed; returns [result, messages]. */
function status_quiet(callable $f): array
{
    $msgs = [];
    set_error_handler(function (int $no, string $msg) use (&$msgs): bool {
        $msgs[] = $msg;
        return true;
    });
    try {
        $r = $f();
    } finally {
        restore_error_handler();
    }
    return [$r, $msgs];
}

/** The query string of the list view (search and page) to come back to after an action. */
function status_list_query(string $q, int $page, array $extra = []): string
{
    $p = array_filter(['q' => $q, 'p' => $page > 1 ? $page : null] + $extra, fn($v) => $v !== null && $v !== '');
    return $p === [] ? '' : '?' . http_build_query($p);
}

function status_self(): string
{
    // The script itself, not the request URI the client chose: forms post and redirects go there.
    return '/' . ltrim((string) ($_SERVER['SCRIPT_NAME'] ?? 'index.php'), '/');
}

function status_handle_post(string $token): never
{
    $given = $_POST['token'] ?? '';
    if (!is_string($given) || $given === '' || !hash_equals($token, $given)) {
        status_refuse(403, 'apcdb status: refused: this form\'s token does not match your session. '
            . 'Reload the page and try again. Nothing was changed.');
    }
    $q = is_string($_POST['q'] ?? null) ? $_POST['q'] : '';
    $page = max(1, (int) ($_POST['p'] ?? 1));
    $action = $_POST['action'] ?? '';
    if ($action === 'delete') {
        $key = is_string($_POST['key'] ?? null) ? base64_decode($_POST['key'], true) : false;
        if ($key === false || $key === '') {
            status_refuse(400, 'apcdb status: no valid key in the form. Nothing was changed.');
        }
        [$deleted, $msgs] = status_quiet(fn() => apc_delete($key));
        $done = $deleted === true ? 'deleted' : ($msgs === [] ? 'missing' : 'failed');
    } elseif ($action === 'clear') {
        if (($_POST['confirm'] ?? '') !== 'yes') {
            header('Location: ' . status_self() . status_list_query($q, $page, ['done' => 'unconfirmed']), true, 303);
            exit;
        }
        [$cleared] = status_quiet(fn() => apc_clear_cache('user'));
        $done = $cleared === true ? 'cleared' : 'failed';
        $q = '';
        $page = 1;
    } else {
        status_refuse(400, 'apcdb status: unknown action. Nothing was changed.');
    }
    // Post/redirect/get: reloading the result page never repeats the action.
    header('Location: ' . status_self() . status_list_query($q, $page, ['done' => $done]), true, 303);
    exit;
}

function fmt_bytes(int|float $n): string
{
    $units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    $i = 0;
    while (abs($n) >= 1024 && $i < count($units) - 1) {
        $n /= 1024;
        $i++;
    }
    return $i === 0 ? sprintf('%d B', $n) : sprintf('%.1f %s', $n, $units[$i]);
}

function fmt_pct(float $part, float $whole): string
{
    return $whole > 0 ? sprintf('%.1f%%', 100 * $part / $whole) : '–';
}

function fmt_duration(int $s): string
{
    if ($s < 120) {
        return $s . ' s';
    }
    if ($s < 7200) {
        return intdiv($s, 60) . ' min';
    }
    if ($s < 172800) {
        return intdiv($s, 3600) . ' h';
    }
    return intdiv($s, 86400) . ' d';
}

/** A ring chart: $parts is a list of [value, colour, label]. */
function svg_ring(array $parts, string $centre, string $title): string
{
    $total = array_sum(array_column($parts, 0));
    $r = 52;
    $c = 2 * M_PI * $r;
    $out = '<svg class="ring" viewBox="0 0 140 140" role="img" aria-label="' . h($title) . '">'
        . '<circle cx="70" cy="70" r="' . $r . '" fill="none" stroke="#e5e7eb" stroke-width="20"/>';
    $at = 0.0;
    foreach ($parts as [$v, $colour]) {
        if ($total <= 0 || $v <= 0) {
            continue;
        }
        // At least a sliver, so a tiny but non-zero share stays visible.
        $len = max($c * $v / $total, 1.5);
        $out .= sprintf('<circle cx="70" cy="70" r="%d" fill="none" stroke="%s" stroke-width="20" '
            . 'stroke-dasharray="%.2f %.2f" stroke-dashoffset="%.2f" transform="rotate(-90 70 70)"/>',
            $r, $colour, $len, $c - $len, -$at);
        $at += $c * $v / $total;
    }
    return $out . '<text x="70" y="76" text-anchor="middle" class="ring-label">' . h($centre) . '</text></svg>';
}

/** A horizontal fill bar. */
function svg_bar(float $value, float $max, string $colour, string $title): string
{
    $w = $max > 0 ? max(0.0, min(1.0, $value / $max)) * 300 : 0;
    if ($value > 0 && $w < 2) {
        $w = 2;
    }
    return '<svg class="bar" viewBox="0 0 300 16" preserveAspectRatio="none" role="img" aria-label="' . h($title) . '">'
        . '<rect width="300" height="16" rx="3" fill="#e5e7eb"/>'
        . sprintf('<rect width="%.1f" height="16" rx="3" fill="%s"/>', $w, $colour) . '</svg>';
}

/** Columns of counts with their labels below. */
function svg_columns(array $counts, array $labels, string $colour, string $title): string
{
    $n = count($counts);
    $max = max(1, ...array_values($counts) ?: [1]);
    $w = 480;
    $hgt = 150;
    $bw = $w / max(1, $n);
    $out = '<svg class="cols" viewBox="0 -16 ' . $w . ' ' . ($hgt + 50) . '" role="img" aria-label="' . h($title) . '">';
    $i = 0;
    foreach ($counts as $k => $v) {
        $bh = $v > 0 ? max(2.0, $hgt * $v / $max) : 0;
        $x = $i * $bw;
        $out .= sprintf('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %d</title></rect>',
            $x + 3, $hgt - $bh, $bw - 6, $bh, $colour, h($labels[$k]), $v);
        if ($v > 0) {
            $out .= sprintf('<text x="%.1f" y="%.1f" text-anchor="middle" class="col-n">%d</text>', $x + $bw / 2, $hgt - $bh - 3, $v);
        }
        $out .= sprintf('<text x="%.1f" y="%d" text-anchor="middle" class="col-l">%s</text>', $x + $bw / 2, $hgt + 16, h($labels[$k]));
        $i++;
    }
    return $out . '<line x1="0" y1="' . $hgt . '" x2="' . $w . '" y2="' . $hgt . '" stroke="#9ca3af"/></svg>';
}

// ---------------------------------------------------------------------------------------------

header('X-Content-Type-Options: nosniff');
header('Referrer-Policy: no-referrer');
header('X-Frame-Options: DENY');
// The page has no script: should escaping ever fail, the browser still runs nothing.
header("Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    . "form-action 'self'; frame-ancestors 'none'; base-uri 'none'");

$user = status_authenticate();
$token = status_session_token($user);

$method = $_SERVER['REQUEST_METHOD'] ?? 'GET';
if (!extension_loaded('apcdb')) {
    status_refuse(500, 'apcdb status: the apcdb extension is not loaded in this PHP (' . PHP_SAPI . ', '
        . (php_ini_loaded_file() ?: 'no php.ini') . '). Enable it (README "Build, install, test").');
}
if ($method === 'POST') {
    status_handle_post($token);
}
if ($method !== 'GET' && $method !== 'HEAD') {
    status_refuse(405, 'apcdb status: only GET and POST.', ['Allow: GET, POST']);
}

header('Content-Type: text/html; charset=UTF-8');
header('Cache-Control: no-store');

$q = is_string($_GET['q'] ?? null) ? substr($_GET['q'], 0, 1000) : '';
$page = max(1, (int) ($_GET['p'] ?? 1));
$done = is_string($_GET['done'] ?? null) ? $_GET['done'] : '';
$notices = [
    'deleted' => ['ok', 'The entry was deleted.'],
    'missing' => ['warn', 'That entry was already gone (deleted or expired).'],
    'cleared' => ['ok', 'Every entry was deleted.'],
    'unconfirmed' => ['warn', 'Nothing was cleared: tick the box to confirm.'],
    'failed' => ['err', 'The store refused the change (see the PHP error log).'],
];

[$stats, $openMsgs] = status_quiet(fn() => apcdb_stats());
$file = (string) ini_get('apcdb.file');
$durability = (string) ini_get('apcdb.durability');
if ($durability === '' || $durability === 'off' || $durability === '0') {
    $durability = 'none';
}
if ($durability === 'periodic') {
    $durability .= ' (every ' . (int) ini_get('apcdb.sync_interval_ms') . ' ms)';
}

$entries = [];
$matching = 0;
$hist = array_fill(0, 8, 0);
$histLabels = ['≤64 B', '≤256 B', '≤1 KiB', '≤4 KiB', '≤16 KiB', '≤64 KiB', '≤256 KiB', 'larger'];
$freeBlocks = 0;
$largestFree = 0;
$listMsgs = [];
$now = time();
if (is_array($stats)) {
    $search = $q === '' ? null : '/' . preg_quote($q, '/') . '/i';
    [, $listMsgs] = status_quiet(function () use ($search, $page, &$entries, &$matching, &$hist) {
        $it = new APCIterator('user', $search, APC_ITER_KEY | APC_ITER_MTIME | APC_ITER_ATIME | APC_ITER_NUM_HITS | APC_ITER_TTL | APC_ITER_MEM_SIZE, 100);
        $first = ($page - 1) * STATUS_PAGE_SIZE;
        foreach ($it as $e) {
            $size = (int) $e['mem_size'];
            $b = $size <= 64 ? 0 : min(7, (int) ceil(log($size / 64, 4)));
            $hist[$b]++;
            if ($matching >= $first && $matching < $first + STATUS_PAGE_SIZE) {
                $entries[] = $e;
            }
            $matching++;
        }
    });
    $sma = apc_sma_info(false);
    foreach ($sma['block_lists'][0] ?? [] as $blk) {
        $freeBlocks++;
        $largestFree = max($largestFree, (int) $blk['size']);
    }
}
$pages = max(1, (int) ceil($matching / STATUS_PAGE_SIZE));
$title = 'apcdb status — ' . ($file !== '' ? basename($file) : 'anonymous store');
?>
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title><?= h($title) ?></title>
<style>
:root { --ink:#111827; --mute:#6b7280; --line:#e5e7eb; --used:#2563eb; --file:#93c5fd; --hit:#16a34a; --miss:#dc2626; --jr:#d97706; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "DejaVu Sans", sans-serif; color: var(--ink); background: #f3f4f6; }
header { background: #1f2937; color: #f9fafb; padding: 14px 24px; display: flex; flex-wrap: wrap; gap: 8px 24px; align-items: baseline; }
header h1 { font-size: 20px; margin: 0; }
header .file { font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
header .meta { color: #d1d5db; font-size: 12px; margin-left: auto; }
main { padding: 18px 24px; max-width: 1280px; margin: 0 auto; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(290px, 1fr)); gap: 14px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
.card h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .05em; color: var(--mute); margin: 0 0 10px; }
.card.wide { grid-column: 1 / -1; }
.ring { width: 112px; height: 112px; float: left; margin-right: 12px; }
.ring-label { font-size: 20px; font-weight: 600; fill: var(--ink); }
.bar { width: 100%; height: 16px; display: block; margin: 6px 0 10px; }
.cols { width: 100%; max-width: 640px; height: auto; display: block; }
.col-n { font-size: 11px; fill: var(--ink); } .col-l { font-size: 11px; fill: var(--mute); }
dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 10px; margin: 0; }
dt { color: var(--mute); white-space: nowrap; } dd { margin: 0; font-variant-numeric: tabular-nums; white-space: nowrap; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
.notice { padding: 10px 14px; border-radius: 6px; margin-bottom: 14px; border: 1px solid; }
.notice.ok { background: #ecfdf5; border-color: #6ee7b7; } .notice.warn { background: #fffbeb; border-color: #fcd34d; }
.notice.err { background: #fef2f2; border-color: #fca5a5; }
form.search { display: flex; gap: 8px; margin: 0 0 10px; }
form.search input[type=search] { flex: 1; padding: 6px 8px; border: 1px solid #d1d5db; border-radius: 5px; font: inherit; }
button { font: inherit; padding: 5px 12px; border-radius: 5px; border: 1px solid #9ca3af; background: #f9fafb; cursor: pointer; }
button.danger { border-color: #dc2626; color: #b91c1c; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--mute); font-weight: 600; }
td.key { font-family: ui-monospace, "DejaVu Sans Mono", monospace; word-break: break-all; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td form { margin: 0; }
.pager { display: flex; gap: 6px; flex-wrap: wrap; margin-top: 10px; align-items: center; }
.pager a, .pager span { padding: 3px 9px; border: 1px solid var(--line); border-radius: 4px; text-decoration: none; color: var(--ink); background: #fff; }
.pager .cur { background: #1f2937; color: #fff; }
.muted { color: var(--mute); }
</style>
</head>
<body>
<header>
  <h1>apcdb status</h1>
  <span class="file"><?= h($file !== '' ? $file : 'anonymous store (apcdb.file is empty): not durable, this server\'s processes only') ?></span>
  <span class="meta">apcdb <?= h((string) phpversion('apcdb')) ?> · PHP <?= h(PHP_VERSION) ?> (<?= h(PHP_SAPI) ?>) · <?= h(date('Y-m-d H:i:s T', $now)) ?></span>
</header>
<main>
<?php if (isset($notices[$done])): ?>
  <div class="notice <?= $notices[$done][0] ?>" id="notice"><?= h($notices[$done][1]) ?></div>
<?php endif; ?>
<?php if (!is_array($stats)): ?>
  <div class="notice err" id="store-error"><strong>The store is not available.</strong>
  <?php foreach ($openMsgs ?: ['apcdb_stats() returned false (apcdb.enabled=0?)'] as $m): ?><br><?= h($m) ?><?php endforeach; ?></div>
<?php else:
    $used = $stats['used_bytes'];
    $fileSize = $stats['file_size'];
    $max = $stats['max_size'];
    $hits = $stats['hits'];
    $misses = $stats['misses'];
    $fragPct = $stats['free_bytes'] > 0 ? 1 - $largestFree / $stats['free_bytes'] : 0.0;
    ?>
  <section class="cards">
    <div class="card" id="card-space">
      <h2>Space</h2>
      <?= svg_ring([[$used, 'var(--used)', 'used'], [max(0, $fileSize - $used), 'var(--file)', 'file'], [max(0, $max - $fileSize), '#e5e7eb', 'room']],
          fmt_pct($used, $max), 'space used of the maximum size') ?>
      <dl>
        <dt><span class="swatch" style="background:var(--used)"></span>used</dt><dd><?= h(fmt_bytes($used)) ?></dd>
        <dt><span class="swatch" style="background:var(--file)"></span>data file</dt><dd><?= h(fmt_bytes($fileSize)) ?></dd>
        <dt><span class="swatch" style="background:#e5e7eb"></span>maximum</dt><dd><?= h(fmt_bytes($max)) ?></dd>
        <dt>free</dt><dd><?= h(fmt_bytes($stats['free_bytes'])) ?></dd>
      </dl>
    </div>
    <div class="card" id="card-frag">
      <h2>Fragmentation</h2>
      <?= svg_bar($fragPct, 1, '#7c3aed', 'fragmentation of the free space') ?>
      <dl>
        <dt>fragmentation</dt><dd><?= sprintf('%.1f%%', 100 * $fragPct) ?></dd>
        <dt>free blocks</dt><dd><?= $freeBlocks ?></dd>
        <dt>largest free</dt><dd><?= h(fmt_bytes($largestFree)) ?></dd>
        <dt>largest value</dt><dd><?= h(fmt_bytes($stats['max_value_len'])) ?></dd>
      </dl>
      <p class="muted">Share of the free space outside its largest block.</p>
    </div>
    <div class="card" id="card-hits">
      <h2>Hits and misses</h2>
      <?= svg_ring([[$hits, 'var(--hit)', 'hits'], [$misses, 'var(--miss)', 'misses']], fmt_pct($hits, $hits + $misses), 'hit rate') ?>
      <dl>
        <dt><span class="swatch" style="background:var(--hit)"></span>hits</dt><dd><?= $hits ?></dd>
        <dt><span class="swatch" style="background:var(--miss)"></span>misses</dt><dd><?= $misses ?></dd>
        <dt>hit rate</dt><dd><?= fmt_pct($hits, $hits + $misses) ?></dd>
        <dt>inserts</dt><dd><?= $stats['inserts'] ?></dd>
        <dt>deletes</dt><dd><?= $stats['deletes'] ?></dd>
      </dl>
      <p class="muted">Since the first process opened the store. Other processes pass on their reads in batches, so the latest may not show yet.</p>
    </div>
    <div class="card" id="card-entries">
      <h2>Entries</h2>
      <dl>
        <dt>entries</dt><dd id="entry-count"><?= $stats['entries'] ?></dd>
        <dt>index slots</dt><dd><?= $stats['index_slots'] ?></dd>
        <dt>tombstones</dt><dd><?= $stats['index_tombstones'] ?></dd>
      </dl>
      <?= svg_bar($stats['entries'] + $stats['index_tombstones'], $stats['index_slots'], '#0891b2', 'index load') ?>
      <p class="muted">Index load: <?= fmt_pct($stats['entries'] + $stats['index_tombstones'], $stats['index_slots']) ?> of the slots (entries and tombstones).</p>
    </div>
    <div class="card" id="card-journal">
      <h2>Journal and checkpoints</h2>
      <?= svg_bar($stats['journal_used'], $stats['journal_size'], 'var(--jr)', 'journal fill') ?>
      <dl>
        <dt>journal</dt><dd><?= h(fmt_bytes($stats['journal_used'])) ?> of <?= h(fmt_bytes($stats['journal_size'])) ?> (<?= fmt_pct($stats['journal_used'], $stats['journal_size']) ?>)</dd>
        <dt>checkpoints</dt><dd><?= $stats['checkpoints'] ?></dd>
        <dt>epoch</dt><dd><?= $stats['checkpoint_epoch'] ?></dd>
        <dt>durability</dt><dd id="durability"><?= h($durability) ?></dd>
      </dl>
    </div>
    <div class="card" id="card-recovery">
      <h2>Recovery and limits</h2>
      <dl>
        <dt>recoveries</dt><dd><?= $stats['recoveries'] ?></dd>
        <dt>at this open</dt><dd><?= $stats['recovered_at_open'] ? 'recovered ' . $stats['recovered_records'] . ' journal records' : 'clean' ?></dd>
        <dt>generation</dt><dd><?= $stats['generation'] ?></dd>
        <dt>max key</dt><dd><?= h(fmt_bytes(STATUS_MAX_KEY_LEN)) ?></dd>
        <dt>serializer</dt><dd><?= h((string) ini_get('apcdb.serializer')) ?></dd>
        <dt>APCu names</dt><dd><?= ini_get('apcdb.apcu_compat') ? 'on' : 'off' ?></dd>
      </dl>
    </div>
    <div class="card wide" id="card-sizes">
      <h2>Entry sizes<?= $q !== '' ? ' (matching the search)' : '' ?></h2>
      <?= svg_columns($hist, $histLabels, 'var(--used)', 'entries by size') ?>
    </div>
  </section>

  <section class="card wide" id="entries" style="margin-top:14px">
    <h2>Entries</h2>
    <form class="search" method="get" action="<?= h(status_self()) ?>">
      <input type="search" name="q" value="<?= h($q) ?>" placeholder="part of a key (case-insensitive)" aria-label="search keys">
      <button type="submit">Search</button>
    </form>
    <?php foreach ($listMsgs as $m): ?><div class="notice err"><?= h($m) ?></div><?php endforeach; ?>
    <p class="muted" id="match-count"><?= $matching ?> <?= $matching === 1 ? 'entry' : 'entries' ?><?= $q !== '' ? ' match' : '' ?>; page <?= min($page, $pages) ?> of <?= $pages ?>.</p>
    <table>
      <thead><tr><th>key</th><th class="num">size</th><th class="num">TTL</th><th class="num" title="hits since the store was last opened, per bucket of keys (SPEC §6.7)">hits</th><th title="the last read or write since the store was last opened">last access</th><th>last write</th><th></th></tr></thead>
      <tbody>
<?php foreach ($entries as $e):
    $ttl = (int) $e['ttl'];
    // SPEC §10: the reported TTL is expires_s - mtime_s - 1.
    $left = $ttl > 0 ? (int) $e['mtime'] + $ttl + 1 - $now : null;
    ?>
        <tr>
          <td class="key"><?= h($e['key']) ?></td>
          <td class="num"><?= h(fmt_bytes((int) $e['mem_size'])) ?></td>
          <td class="num"><?= $left === null ? '∞' : h(fmt_duration(max(0, $left)) . ' left of ' . fmt_duration($ttl)) ?></td>
          <td class="num"><?= (int) $e['num_hits'] ?></td>
          <td><?= (int) $e['access_time'] > 0 ? h(date('Y-m-d H:i:s', (int) $e['access_time'])) : '—' ?></td>
          <td><?= h(date('Y-m-d H:i:s', (int) $e['mtime'])) ?></td>
          <td><form method="post" action="<?= h(status_self()) ?>">
            <input type="hidden" name="token" value="<?= h($token) ?>">
            <input type="hidden" name="action" value="delete">
            <input type="hidden" name="key" value="<?= h(base64_encode($e['key'])) ?>">
            <input type="hidden" name="q" value="<?= h($q) ?>">
            <input type="hidden" name="p" value="<?= $page ?>">
            <button type="submit" class="danger delete">Delete</button>
          </form></td>
        </tr>
<?php endforeach; ?>
<?php if ($entries === []): ?>
        <tr><td colspan="7" class="muted">No entries<?= $q !== '' ? ' match' : '' ?>.</td></tr>
<?php endif; ?>
      </tbody>
    </table>
<?php if ($pages > 1): ?>
    <nav class="pager" aria-label="pages">
<?php for ($i = 1; $i <= $pages; $i++):
    if ($i !== 1 && $i !== $pages && abs($i - $page) > 3) {
        if ($i === 2 || $i === $pages - 1) {
            echo '<span class="muted">…</span>';
        }
        continue;
    } ?>
      <?php if ($i === $page): ?><span class="cur"><?= $i ?></span><?php else: ?><a href="<?= h(status_self() . status_list_query($q, $i)) ?>"><?= $i ?></a><?php endif; ?>
<?php endfor; ?>
    </nav>
<?php endif; ?>
  </section>

  <section class="card wide" id="clear" style="margin-top:14px">
    <h2>Clear the store</h2>
    <form method="post" action="<?= h(status_self()) ?>">
      <input type="hidden" name="token" value="<?= h($token) ?>">
      <input type="hidden" name="action" value="clear">
      <label><input type="checkbox" name="confirm" value="yes"> delete every entry of this store, for every process that uses it</label>
      <button type="submit" class="danger">Clear all</button>
    </form>
  </section>
<?php endif; ?>
</main>
</body>
</html>
