<?php
// A shop's category page, as a template would build it: data, a sort, grouping, escaping, number formatting.
$names = ['Oak', 'Linen', 'Copper', 'Maple', 'Slate', 'Wool', 'Cedar', 'Clay', 'Brass', 'Birch'];
$kinds = ['Lamp', 'Chair', 'Vase', 'Shelf', 'Rug', 'Kettle', 'Bowl', 'Clock'];
$categories = ['Kitchen', 'Living room', 'Garden', 'Office'];
mt_srand(42);
$products = [];
for ($i = 1; $i <= 112; $i++) {
    $products[] = [
        'id' => $i,
        'name' => $names[mt_rand(0, 9)] . ' ' . $kinds[mt_rand(0, 7)] . ' "' . chr(65 + $i % 26) . '"',
        'category' => $categories[$i % 4],
        'price' => mt_rand(499, 49999) / 100,
        'stock' => mt_rand(0, 40),
        'rating' => mt_rand(20, 50) / 10,
    ];
}
usort($products, fn ($a, $b) => [$b['rating'], $a['price']] <=> [$a['rating'], $b['price']]);
$groups = [];
foreach ($products as $p) {
    $groups[$p['category']][] = $p;
}
ksort($groups);
$e = fn (string $s): string => htmlspecialchars($s, ENT_QUOTES, 'UTF-8');
$total = array_sum(array_map(fn ($p) => $p['price'] * $p['stock'], $products));
?>
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Home &amp; living — <?= count($products) ?> products</title>
<link rel="stylesheet" href="/small.css"></head>
<body>
<header><nav><?php foreach ($categories as $c): ?><a href="/c/<?= $e(strtolower(str_replace(' ', '-', $c))) ?>"><?= $e($c) ?></a> <?php endforeach ?></nav></header>
<main>
<?php foreach ($groups as $category => $items): ?>
<section id="<?= $e(strtolower(str_replace(' ', '-', $category))) ?>">
<h2><?= $e($category) ?> <small>(<?= count($items) ?>)</small></h2>
<ul class="grid">
<?php foreach ($items as $p): ?>
<li class="card<?= $p['stock'] === 0 ? ' sold-out' : '' ?>"><a href="/p/<?= $p['id'] ?>"><?= $e($p['name']) ?></a>
<span class="price"><?= number_format($p['price'], 2, '.', ',') ?> €</span>
<span class="rating" title="<?= $p['rating'] ?> of 5"><?= str_repeat('★', (int) round($p['rating'])) . str_repeat('☆', 5 - (int) round($p['rating'])) ?></span>
<?= $p['stock'] === 0 ? '<em>sold out</em>' : ($p['stock'] < 5 ? "<em>only {$p['stock']} left</em>" : '') ?></li>
<?php endforeach ?>
</ul>
</section>
<?php endforeach ?>
</main>
<footer>Stock value <?= number_format($total, 2, '.', ',') ?> €</footer>
</body>
</html>
