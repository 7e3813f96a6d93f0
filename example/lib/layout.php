<?php
// Shared page chrome for the example site. Lives outside public/ so it can never be requested directly.

declare(strict_types=1);

/** Escapes text for HTML element content and attribute values. */
function h(mixed $value): string
{
    return htmlspecialchars((string) $value, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}

/** A request field as a string ('' when missing or not a string, e.g. name[] arrays). */
function field(array $source, string $key): string
{
    $value = $source[$key] ?? '';
    return is_string($value) ? $value : '';
}

function page_start(string $title, string $active): void
{
    header('Content-Type: text/html; charset=utf-8');
    $nav = ['index.php' => 'Home', 'form.php' => 'Form', 'upload.php' => 'Upload', 'api.php' => 'API'];
    ?>
<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title><?= h($title) ?> · phpgate example</title>
  <link rel="icon" href="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'%3E%3Crect width='32' height='32' rx='8' fill='%234f5bd5'/%3E%3Cpath d='M9 22V10h7a4 4 0 0 1 0 8h-7' fill='none' stroke='white' stroke-width='3'/%3E%3C/svg%3E">
  <link rel="stylesheet" href="style.css">
</head>
<body>
  <header class="top">
    <a class="brand" href="index.php"><span class="logo">p</span>phpgate</a>
    <nav>
      <?php foreach ($nav as $href => $label): ?>
        <a href="<?= h($href) ?>"<?= $href === $active ? ' aria-current="page"' : '' ?>><?= h($label) ?></a>
      <?php endforeach ?>
    </nav>
  </header>
  <main>
    <?php
}

function page_end(): void
{
    ?>
  </main>
  <footer>
    Served by PHP <?= h(PHP_VERSION) ?> (<?= h(PHP_SAPI) ?>), worker pid <?= h(getmypid()) ?>.
  </footer>
</body>
</html>
<?php
}
