<?php
declare(strict_types=1);
require __DIR__ . '/../lib/layout.php';

const TOPICS = ['question' => 'A question', 'feedback' => 'Feedback', 'bug' => 'A bug report'];

/** The submitted values, normalised to strings. */
function form_values(array $src): array
{
    $topic = field($src, 'topic');
    return [
        'name' => trim(field($src, 'name')),
        'email' => trim(field($src, 'email')),
        'topic' => isset(TOPICS[$topic]) ? $topic : 'question',
        'message' => field($src, 'message'),
        'subscribe' => field($src, 'subscribe') === '1' ? '1' : '0',
    ];
}

$method = $_SERVER['REQUEST_METHOD'] ?? 'GET';
$values = null;
$via = '';

if ($method === 'POST') {
    $values = form_values($_POST);
    if (field($_POST, 'prg') === '1') {
        // Post/Redirect/Get: carry the values in the query string of a 303 to this same script.
        $self = (string) ($_SERVER['SCRIPT_NAME'] ?? '/form.php');
        header('Location: ' . $self . '?' . http_build_query(['sent' => $values]), true, 303);
        exit;
    }
    $via = 'Received with POST (reloading this page would submit it again).';
} elseif (isset($_GET['sent']) && is_array($_GET['sent'])) {
    $values = form_values($_GET['sent']);
    $via = 'Received with POST, then redirected here with 303 See Other: reloading is safe.';
}

$v = $values ?? form_values([]);
page_start('Form', 'form.php');
?>
<h1>Form</h1>
<p class="lead">A plain HTML form. Everything echoed back below is escaped with <code>htmlspecialchars</code>.</p>

<?php if ($values !== null): ?>
  <section class="card result">
    <h2>Submitted values</h2>
    <p class="muted"><?= h($via) ?></p>
    <table class="kv">
      <tr><th scope="row">Name</th><td><?= h($values['name']) ?></td></tr>
      <tr><th scope="row">Email</th><td><?= h($values['email']) ?></td></tr>
      <tr><th scope="row">Topic</th><td><?= h(TOPICS[$values['topic']]) ?></td></tr>
      <tr><th scope="row">Message</th><td><pre><?= h($values['message']) ?></pre></td></tr>
      <tr><th scope="row">Newsletter</th><td><?= $values['subscribe'] === '1' ? 'yes' : 'no' ?></td></tr>
    </table>
  </section>
<?php endif ?>

<form class="card" method="post" action="form.php">
  <label>Name <input name="name" value="<?= h($v['name']) ?>" autocomplete="name"></label>
  <label>Email <input name="email" type="email" value="<?= h($v['email']) ?>" autocomplete="email"></label>
  <label>Topic
    <select name="topic">
      <?php foreach (TOPICS as $key => $label): ?>
        <option value="<?= h($key) ?>"<?= $key === $v['topic'] ? ' selected' : '' ?>><?= h($label) ?></option>
      <?php endforeach ?>
    </select>
  </label>
  <label>Message <textarea name="message" rows="4"><?= h($v['message']) ?></textarea></label>
  <label class="check"><input type="checkbox" name="subscribe" value="1"<?= $v['subscribe'] === '1' ? ' checked' : '' ?>> Subscribe to the newsletter</label>
  <label class="check"><input type="checkbox" name="prg" value="1" checked> Redirect after POST (Post/Redirect/Get)</label>
  <div class="actions">
    <button type="submit">Send</button>
    <a class="button secondary" href="form.php">Reset</a>
  </div>
</form>
<?php
page_end();
