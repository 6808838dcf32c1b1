<?php
// Every crate that can be published carries the metadata crates.io and packagers read; the others
// say publish = false. Reads `cargo metadata` on stdin; exits 1 listing what is missing.
$m = json_decode(stream_get_contents(STDIN), true, 512, JSON_THROW_ON_ERROR);
$root = $m['workspace_root'];
$problems = [];
foreach (['LICENSE-MIT', 'LICENSE-APACHE'] as $f) {
    if (!is_file("$root/$f")) {
        $problems[] = "$f is missing at the workspace root (license is MIT OR Apache-2.0)";
    }
}
foreach ($m['packages'] as $p) {
    if (!in_array($p['id'], $m['workspace_members'], true)) {
        continue;
    }
    $name = $p['name'];
    if ($p['publish'] === []) {
        continue; // publish = false
    }
    foreach (['description', 'license', 'repository', 'readme', 'rust_version'] as $k) {
        if (empty($p[$k])) {
            $problems[] = "$name: no $k";
        }
    }
    if ($p['license'] !== 'MIT OR Apache-2.0') {
        $problems[] = "$name: license is not MIT OR Apache-2.0";
    }
    // In the crate's own directory (links to the root's), so the published package carries them.
    foreach (['LICENSE-MIT', 'LICENSE-APACHE'] as $f) {
        if (!is_file(dirname($p['manifest_path']) . "/$f")) {
            $problems[] = "$name: no $f in its directory";
        }
    }
    foreach (['keywords', 'categories'] as $k) {
        if (count($p[$k]) === 0 || count($p[$k]) > 5) {
            $problems[] = "$name: $k must list 1 to 5";
        }
    }
    if (!empty($p['readme']) && !is_file(dirname($p['manifest_path']) . '/' . $p['readme'])
        && !is_file($p['readme'])) {
        $problems[] = "$name: readme {$p['readme']} not found";
    }
    foreach ($p['dependencies'] as $d) {
        if (isset($d['path']) && $d['kind'] === null && $d['req'] === '*') {
            $problems[] = "$name: path dependency {$d['name']} has no version (cannot be published)";
        }
    }
}
foreach ($problems as $x) {
    echo "metadata: $x\n";
}
echo 'metadata: ', count($problems) === 0 ? 'every published crate complete' : count($problems) . ' problems', "\n";
exit(count($problems) === 0 ? 0 : 1);
