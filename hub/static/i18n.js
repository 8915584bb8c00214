// Every label of the console, in one place. Customer text never passes through here.
export const LABELS = {
  en: {
    title: "Contact hub", login: "Login", password: "Password", signIn: "Sign in",
    signOut: "Sign out", wrongLogin: "Wrong login or password", online: "Online",
    away: "Away", offline: "Offline", offers: "New dialogs", accept: "Accept",
    decline: "Decline", expiresIn: "expires in", seconds: "s", myDialogs: "My dialogs",
    noDialogs: "No open dialogs", pick: "Pick a dialog", reply: "Write a reply… (Ctrl+Enter sends)",
    send: "Send", attach: "Attach", transferTo: "Transfer to…", transfer: "Transfer",
    close: "Close dialog", lead: "Lead", name: "Name", phones: "Phones (one a line)",
    emails: "Emails (one a line)", identities: "Channels", save: "Save", saved: "Saved",
    duplicates: "Possible duplicates", merge: "Merge into this lead", noDuplicates: "None found",
    canned: "Canned responses…", supervisor: "Supervisor", queues: "Queues", queue: "Queue",
    waiting: "Waiting", oldestWait: "Oldest wait", operators: "Operators", presence: "Presence",
    load: "Load", disconnected: "Connection lost, reconnecting…", queueLabel: "queue",
    delivery_pending: "sending", delivery_sent: "sent", delivery_delivered: "delivered",
    delivery_seen: "seen", delivery_failed: "failed", delivery_undeliverable: "undeliverable",
    file: "file", newOffer: "New dialog offered", language: "Language", notifications: "Notify me",
  },
  ru: {
    title: "Контакт-хаб", login: "Логин", password: "Пароль", signIn: "Войти",
    signOut: "Выйти", wrongLogin: "Неверный логин или пароль", online: "В сети",
    away: "Отошёл", offline: "Не в сети", offers: "Новые диалоги", accept: "Принять",
    decline: "Отклонить", expiresIn: "осталось", seconds: "с", myDialogs: "Мои диалоги",
    noDialogs: "Нет открытых диалогов", pick: "Выберите диалог",
    reply: "Ответ… (Ctrl+Enter — отправить)", send: "Отправить", attach: "Файл",
    transferTo: "Передать…", transfer: "Передать", close: "Закрыть диалог", lead: "Клиент",
    name: "Имя", phones: "Телефоны (по одному в строке)", emails: "Email (по одному в строке)",
    identities: "Каналы", save: "Сохранить", saved: "Сохранено", duplicates: "Возможные дубли",
    merge: "Объединить с этим", noDuplicates: "Не найдено", canned: "Шаблоны ответов…",
    supervisor: "Супервизор", queues: "Очереди", queue: "Очередь", waiting: "Ждут",
    oldestWait: "Дольше всех", operators: "Операторы", presence: "Статус", load: "Нагрузка",
    disconnected: "Связь потеряна, переподключение…", queueLabel: "очередь",
    delivery_pending: "отправляется", delivery_sent: "отправлено",
    delivery_delivered: "доставлено", delivery_seen: "прочитано", delivery_failed: "ошибка",
    delivery_undeliverable: "не доставить", file: "файл", newOffer: "Новый диалог",
    language: "Язык", notifications: "Уведомления",
  },
};

export const CANNED = {
  en: ["Hello, {name}! How can I help you?", "One moment please, I am checking.",
       "Thank you for contacting us, {name}. — {operator}"],
  ru: ["Здравствуйте, {name}! Чем могу помочь?", "Минуту, пожалуйста, уточняю.",
       "Спасибо за обращение, {name}. — {operator}"],
};

let current = (localStorage.getItem("hub.lang") || navigator.language || "en").startsWith("ru") ? "ru" : "en";

export function lang() { return current; }
export function setLang(value) { current = value in LABELS ? value : "en"; localStorage.setItem("hub.lang", current); }
export function t(key) { return (LABELS[current] && LABELS[current][key]) || LABELS.en[key] || key; }
