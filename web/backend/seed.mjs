// Deterministic seed content for the demo: titles, authors and a few opening
// comments per picture, derived from the item number so that every start of the
// backend shows the same site. No outside data, no randomness.

const PLACES = ['harbour', 'ridge', 'valley', 'lake', 'dunes', 'fjord', 'meadow', 'canyon',
  'coast', 'pass', 'glacier', 'marsh', 'plateau', 'bay', 'forest edge', 'summit'];
const MOODS = ['Quiet', 'Early', 'Late', 'Cold', 'Golden', 'Misty', 'Windy', 'Still',
  'Hazy', 'Bright', 'Blue', 'Last light on the'];
const TIMES = ['at dawn', 'at dusk', 'after the rain', 'in October', 'before the storm',
  'at noon', 'on a clear day', 'in late summer', '', '', ''];
export const AUTHORS = ['mira', 'jonas', 'aiko', 'tomasz', 'lena', 'ravi', 'ines', 'oskar',
  'nadia', 'felix', 'yuki', 'carmen', 'eli', 'sofia', 'malik', 'greta'];
const REMARKS = [
  'The colours in this one are unreal.',
  'I was there last spring, it really looks like this.',
  'That second ridge line is doing a lot of work.',
  'Wallpaper material.',
  'How long did you wait for the light?',
  'This makes me want to go hiking this weekend.',
  'Love how calm it feels.',
  'The sky gradient is perfect.',
  'Printed this for my office, thanks for sharing.',
  'Which lens did you use?',
];

/** Small deterministic PRNG (mulberry32) seeded by an integer. */
export function rng(seed) {
  let a = (seed * 2654435761) >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = (r, list) => list[Math.floor(r() * list.length)];

/** Title, author and seed comments of picture `n` (1-based). */
export function seedItem(n, now) {
  const r = rng(n);
  const mood = pick(r, MOODS);
  const title = `${mood} ${pick(r, PLACES)} ${pick(r, TIMES)}`
    .replace(/\s+/g, ' ').trim();
  const author = pick(r, AUTHORS);
  const createdAt = now - Math.floor(n * 37 * 60 * 1000 + r() * 30 * 60 * 1000);
  const comments = [];
  const count = Math.floor(r() * 4);
  for (let i = 0; i < count; i++) {
    comments.push({ author: pick(r, AUTHORS), text: pick(r, REMARKS),
      at: createdAt + (i + 1) * Math.floor(5 + r() * 50) * 60 * 1000 });
  }
  const stickers = {};
  for (const kind of ['heart', 'star', 'sun', 'bolt']) {
    const c = Math.floor(r() * r() * 9);
    if (c > 0) stickers[kind] = c;
  }
  return { title: title.charAt(0).toUpperCase() + title.slice(1), author, createdAt, comments, stickers };
}
