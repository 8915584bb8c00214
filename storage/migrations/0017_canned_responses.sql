-- Canned responses, kept by admins (API) for every console: per language, with variables
-- {name} (the customer's) and {operator} (the operator's own) filled in the composer.
CREATE TABLE canned_responses (
    id         bigserial PRIMARY KEY,
    language   text NOT NULL CHECK (language ~ '^[a-z]{2}$'),
    title      text NOT NULL CHECK (length(title) BETWEEN 1 AND 100),
    text       text NOT NULL CHECK (length(text) BETWEEN 1 AND 4096),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (language, title)
);
-- What the console offered before they were kept here.
INSERT INTO canned_responses (language, title, text) VALUES
    ('en', 'Greeting', 'Hello, {name}! How can I help you?'),
    ('en', 'One moment', 'One moment please, I am checking.'),
    ('en', 'Thanks', 'Thank you for contacting us, {name}. — {operator}'),
    ('ru', 'Приветствие', 'Здравствуйте, {name}! Чем могу помочь?'),
    ('ru', 'Минуту', 'Минуту, пожалуйста, уточняю.'),
    ('ru', 'Спасибо', 'Спасибо за обращение, {name}. — {operator}');
