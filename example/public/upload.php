<?php
declare(strict_types=1);
require __DIR__ . '/../lib/layout.php';

const UPLOAD_ERRORS = [
    UPLOAD_ERR_INI_SIZE => 'larger than upload_max_filesize',
    UPLOAD_ERR_FORM_SIZE => 'larger than the form allows',
    UPLOAD_ERR_PARTIAL => 'only partially uploaded',
    UPLOAD_ERR_NO_FILE => 'no file was sent',
    UPLOAD_ERR_NO_TMP_DIR => 'no temporary directory',
    UPLOAD_ERR_CANT_WRITE => 'could not be written to disk',
    UPLOAD_ERR_EXTENSION => 'stopped by a PHP extension',
];

function human_size(int $bytes): string
{
    $units = ['B', 'KiB', 'MiB', 'GiB'];
    $i = 0;
    $n = (float) $bytes;
    while ($n >= 1024 && $i < count($units) - 1) {
        $n /= 1024;
        $i++;
    }
    return $i === 0 ? "$bytes B" : sprintf('%.1f %s', $n, $units[$i]);
}

// Files are only read where PHP put them (its temp dir) and hashed; PHP deletes them when the request
// ends. Nothing is ever moved into the docroot.
$results = [];
$notice = '';
if (($_SERVER['REQUEST_METHOD'] ?? 'GET') === 'POST') {
    $f = $_FILES['files'] ?? null;
    if ($f === null && empty($_POST) && (int) ($_SERVER['CONTENT_LENGTH'] ?? 0) > 0) {
        $notice = 'The request body was larger than post_max_size (' . ini_get('post_max_size') . '), so PHP dropped it.';
    } elseif ($f !== null && is_array($f['name'])) {
        foreach ($f['name'] as $i => $name) {
            $error = (int) $f['error'][$i];
            if ($error === UPLOAD_ERR_NO_FILE) {
                continue;
            }
            $tmp = (string) $f['tmp_name'][$i];
            $ok = $error === UPLOAD_ERR_OK && is_uploaded_file($tmp);
            $results[] = [
                'name' => (string) $name,
                'size' => (int) $f['size'][$i],
                'type' => (string) $f['type'][$i],
                'sha256' => $ok ? hash_file('sha256', $tmp) : null,
                'error' => $ok ? null : (UPLOAD_ERRORS[$error] ?? "error $error"),
            ];
        }
    }
    if ($notice === '' && $results === []) {
        $notice = 'No file was chosen.';
    }
}

page_start('Upload', 'upload.php');
?>
<h1>Upload</h1>
<p class="lead">Send one or more files as <code>multipart/form-data</code>. Each is hashed where PHP stored it and then discarded.</p>

<?php if ($notice !== ''): ?>
  <p class="notice"><?= h($notice) ?></p>
<?php endif ?>

<?php if ($results !== []): ?>
  <section class="card result">
    <h2><?= count($results) ?> file<?= count($results) === 1 ? '' : 's' ?> received</h2>
    <table class="list">
      <thead><tr><th>Name</th><th>Size</th><th>SHA-256</th></tr></thead>
      <tbody>
        <?php foreach ($results as $r): ?>
          <tr>
            <td><?= h($r['name']) ?><br><span class="muted"><?= h($r['type'] !== '' ? $r['type'] : 'no type') ?></span></td>
            <td class="num" title="<?= h($r['size']) ?> bytes"><?= h(human_size($r['size'])) ?></td>
            <td><?= $r['sha256'] !== null ? '<code class="hash">' . h($r['sha256']) . '</code>' : '<span class="error">' . h($r['error']) . '</span>' ?></td>
          </tr>
        <?php endforeach ?>
      </tbody>
    </table>
  </section>
<?php endif ?>

<form class="card" method="post" action="upload.php" enctype="multipart/form-data">
  <label>Files <input type="file" name="files[]" multiple required></label>
  <div class="actions"><button type="submit">Upload</button></div>
  <p class="muted">
    Limits: <?= h(ini_get('upload_max_filesize')) ?> per file, <?= h(ini_get('post_max_size')) ?> per request,
    <?= h(ini_get('max_file_uploads')) ?> files.
  </p>
</form>
<?php
page_end();
