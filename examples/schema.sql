-- The notes example's schema. Idempotent: `npm run dev` and the runtime tests apply it on every start.
create table if not exists notes (
  id integer generated always as identity primary key,
  text text not null check (char_length(text) between 1 and 500),
  created_at timestamptz not null default now()
);
create index if not exists notes_created_at_idx on notes (created_at desc, id desc);
