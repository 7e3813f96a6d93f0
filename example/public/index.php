<?php
declare(strict_types=1);
require __DIR__ . '/../lib/layout.php';

$s = $_SERVER;
$https = !empty($s['HTTPS']) && $s['HTTPS'] !== 'off';
$apcu = function_exists('apcu_enabled') && apcu_enabled();
$info = [
    'Method' => $s['REQUEST_METHOD'] ?? '',
    'Request URI' => $s['REQUEST_URI'] ?? '',
    'Script' => $s['SCRIPT_NAME'] ?? '',
    'Protocol' => ($s['SERVER_PROTOCOL'] ?? '') . ($https ? ' over TLS' : ''),
    'Host' => $s['HTTP_HOST'] ?? '',
    'Client address' => $s['REMOTE_ADDR'] ?? '',
    'Server software' => $s['SERVER_SOFTWARE'] ?? '',
    'PHP version' => PHP_VERSION,
    'SAPI' => PHP_SAPI,
    'Worker pid' => (string) getmypid(),
    'APCu' => $apcu ? 'enabled' : 'not available',
    'Server time' => date('Y-m-d H:i:s T'),
];

page_start('Welcome', 'index.php');
?>
<section class="hero">
  <h1>It works.</h1>
  <p class="lead">
    This page is PHP, served by <strong>phpgate</strong>: a Node.js gateway that replaces nginx + php-fpm.
    It speaks HTTP in front, serves static files itself, and runs your scripts on a supervised pool of
    <code>php-cgi</code> workers over FastCGI behind.
  </p>
</section>

<section class="card">
  <h2>This request</h2>
  <table class="kv">
    <?php foreach ($info as $label => $value): ?>
      <tr><th scope="row"><?= h($label) ?></th><td><code><?= h($value) ?></code></td></tr>
    <?php endforeach ?>
  </table>
</section>

<section class="grid">
  <a class="tile" href="form.php">
    <h3>Form</h3>
    <p>GET and POST, escaped output, and Post/Redirect/Get.</p>
  </a>
  <a class="tile" href="upload.php">
    <h3>Upload</h3>
    <p>Multipart uploads of one or more files, with their SHA-256.</p>
  </a>
  <a class="tile" href="api.php?hello=world">
    <h3>API</h3>
    <p>A JSON endpoint with the worker pid and an APCu counter.</p>
  </a>
</section>
<?php
page_end();
