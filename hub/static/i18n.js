// Every label of the console, in one place, in English and Russian. Customer text never
// passes through here. The server sends error codes; `errorText` words them.
export const LABELS = {
  en: {
    title: "Contact hub", login: "Login", password: "Password", signIn: "Sign in",
    signOut: "Sign out", wrongLogin: "Wrong login or password", online: "Online",
    away: "Away", offline: "Offline", offers: "New dialogs", accept: "Accept",
    decline: "Decline", expiresIn: "expires in", seconds: "s", myDialogs: "My dialogs",
    noDialogs: "No open dialogs", pick: "Pick a dialog", reply: "Write a reply… (Ctrl+Enter sends)",
    send: "Send", attach: "Attach files", transferTo: "Transfer to…", transfer: "Transfer",
    close: "Close dialog", lead: "Lead", name: "Name", phones: "Phones (one a line)",
    emails: "Emails (one a line)", identities: "Channels", save: "Save", saved: "Saved",
    duplicates: "Possible duplicates", merge: "Merge into this lead", noDuplicates: "None found",
    suggestedPhones: "Phones from the email signature", addPhone: "Add", dismiss: "Dismiss",
    canned: "Canned responses…", supervisor: "Supervisor", queues: "Queues", queue: "Queue",
    waiting: "Waiting", oldestWait: "Oldest wait", operators: "Operators", presence: "Presence",
    load: "Load", disconnected: "Connection lost, reconnecting…", queueLabel: "queue",
    delivery_pending: "sending", delivery_sent: "sent", delivery_delivered: "delivered",
    delivery_seen: "seen", delivery_failed: "failed", delivery_undeliverable: "undeliverable",
    file: "file", newOffer: "New dialog offered", language: "Language", notifications: "Notify me",
    waited: "waiting", minutes: "min", hours: "h", justNow: "<1 min", sortBy: "Sort",
    sortActivity: "latest activity", sortWaiting: "longest waiting", olderLoading: "Loading earlier messages…",
    noMore: "The beginning of the conversation", views: "Views", viewList: "Dialogs",
    viewConversation: "Conversation", viewLead: "Lead", help: "Keyboard shortcuts",
    helpClose: "Close", shortcut_help: "Show or hide this help", shortcut_accept: "Accept the first offer",
    shortcut_next: "Next dialog", shortcut_prev: "Previous dialog", shortcut_reply: "Write a reply",
    shortcut_send: "Send the reply", shortcut_escape: "Close this help, leave the reply box",
    loadingHistory: "Loading…", fileNote: "file", dialogsList: "Dialogs", me: "Signed in as",
    kind_telegram: "Telegram", kind_vk: "VK", kind_viber: "Viber", kind_form: "Site form",
    kind_email: "Email", kind_pbx: "Phone", kind_note: "Note", kind_call: "Call",
    calls: "Calls", incomingCall: "Incoming call", callIn: "Incoming call", callOut: "Outgoing call",
    call_ringing: "ringing", call_in_progress: "in progress", call_answered: "answered",
    call_missed: "missed", call_busy: "busy", call_failed: "failed", extension: "ext.",
    unknownCaller: "Caller not identified", recentHistory: "Recent history",
    firstContact: "First contact: a new lead", openLead: "Open lead", callBack: "Call back",
    recording: "Recording", phoneOnly: "A phone dialog: answer by calling",
    error_unauthorized: "Please sign in again", error_not_found: "Not found (it may have been closed or moved)",
    error_not_yours: "That dialog is not yours", error_offer_gone: "The offer is gone: someone else took it or it expired",
    error_at_capacity: "You already have as many dialogs as you can take",
    error_operator_full: "That operator has no room for another dialog",
    error_operator_unavailable: "That operator is not online", error_not_open: "The dialog is closed",
    error_empty_message: "Write something first", error_text_too_long: "The message is too long",
    error_invalid_text: "The text contains characters that cannot be sent",
    error_already_merged: "That lead was merged already", error_same_lead: "It is the same lead",
    error_unavailable: "The hub cannot do that right now; try again", error_rate_limited: "Too many attempts; wait a little",
    error_invalid_phone: "That is not a phone number", error_invalid_email: "That is not an email address",
    error_files_not_supported: "This channel takes text only", error_file_too_large: "The file is too large",
    error_too_many_files: "Too many files at once", error_no_queue: "No such queue",
    error_internal: "Something went wrong in the hub", error_disconnected: "Not connected; try again in a moment",
    search: "Search", searchPlaceholder: "Search: name, phone, email, words…", searchClear: "Clear the search",
    searchResults: "Search results", searchLeads: "Leads", searchMessages: "Messages",
    searchNothing: "Nothing found", searchShort: "Type at least two characters",
    shortcut_search: "Search leads and messages", channel: "Channel", allChannels: "all",
    addNote: "Note", addNoteHint: "Keep it as an internal note: colleagues see it, the customer never",
    noteLabel: "Internal note", edited: "edited", showMore: "Show all", showLess: "Show less",
    newDialog: "New conversation", suggestedNames: "Names from the channels", useName: "Use",
    ho_created: "Dialog opened", ho_offered: "Offered to", ho_accepted: "accepted", ho_assigned: "Assigned to",
    ho_transferred: "Transferred to", ho_expired: "The offer expired", ho_closed: "Closed", ho_reopened: "Reopened",
    historyOnly: "history: no dialog of yours", writeFirst: "Write to the customer first… (Ctrl+Enter sends)",
    error_no_conversation: "The customer has not written on that channel: there is no address to write to",
  },
  ru: {
    title: "Контакт-хаб", login: "Логин", password: "Пароль", signIn: "Войти",
    signOut: "Выйти", wrongLogin: "Неверный логин или пароль", online: "В сети",
    away: "Отошёл", offline: "Не в сети", offers: "Новые диалоги", accept: "Принять",
    decline: "Отклонить", expiresIn: "осталось", seconds: "с", myDialogs: "Мои диалоги",
    noDialogs: "Нет открытых диалогов", pick: "Выберите диалог",
    reply: "Ответ… (Ctrl+Enter — отправить)", send: "Отправить", attach: "Прикрепить файлы",
    transferTo: "Передать…", transfer: "Передать", close: "Закрыть диалог", lead: "Клиент",
    name: "Имя", phones: "Телефоны (по одному в строке)", emails: "Email (по одному в строке)",
    identities: "Каналы", save: "Сохранить", saved: "Сохранено", duplicates: "Возможные дубли",
    merge: "Объединить с этим", noDuplicates: "Не найдено",
    suggestedPhones: "Телефоны из подписи письма", addPhone: "Добавить", dismiss: "Скрыть", canned: "Шаблоны ответов…",
    supervisor: "Супервизор", queues: "Очереди", queue: "Очередь", waiting: "Ждут",
    oldestWait: "Дольше всех", operators: "Операторы", presence: "Статус", load: "Нагрузка",
    disconnected: "Связь потеряна, переподключение…", queueLabel: "очередь",
    delivery_pending: "отправляется", delivery_sent: "отправлено",
    delivery_delivered: "доставлено", delivery_seen: "прочитано", delivery_failed: "ошибка",
    delivery_undeliverable: "не доставить", file: "файл", newOffer: "Новый диалог",
    language: "Язык", notifications: "Уведомления",
    waited: "ждёт", minutes: "мин", hours: "ч", justNow: "<1 мин", sortBy: "Порядок",
    sortActivity: "по активности", sortWaiting: "дольше ждут", olderLoading: "Загрузка ранних сообщений…",
    noMore: "Начало переписки", views: "Разделы", viewList: "Диалоги",
    viewConversation: "Переписка", viewLead: "Клиент", help: "Горячие клавиши",
    helpClose: "Закрыть", shortcut_help: "Показать или скрыть подсказку", shortcut_accept: "Принять первый диалог",
    shortcut_next: "Следующий диалог", shortcut_prev: "Предыдущий диалог", shortcut_reply: "Написать ответ",
    shortcut_send: "Отправить ответ", shortcut_escape: "Закрыть подсказку, выйти из поля ответа",
    loadingHistory: "Загрузка…", fileNote: "файл", dialogsList: "Диалоги", me: "Вы вошли как",
    kind_telegram: "Telegram", kind_vk: "ВКонтакте", kind_viber: "Viber", kind_form: "Форма на сайте",
    kind_email: "Почта", kind_pbx: "Телефон", kind_note: "Заметка", kind_call: "Звонок",
    calls: "Звонки", incomingCall: "Входящий звонок", callIn: "Входящий звонок", callOut: "Исходящий звонок",
    call_ringing: "звонит", call_in_progress: "идёт разговор", call_answered: "отвечен",
    call_missed: "пропущен", call_busy: "занято", call_failed: "не удался", extension: "доб.",
    unknownCaller: "Номер не определён", recentHistory: "Недавняя история",
    firstContact: "Первое обращение: новый лид", openLead: "Открыть лида", callBack: "Перезвонить",
    recording: "Запись", phoneOnly: "Телефонный диалог: ответьте звонком",
    error_unauthorized: "Войдите снова", error_not_found: "Не найдено (возможно, диалог закрыт или передан)",
    error_not_yours: "Это не ваш диалог", error_offer_gone: "Предложение снято: диалог взял другой или время вышло",
    error_at_capacity: "У вас уже максимум диалогов",
    error_operator_full: "У этого оператора нет места для диалога",
    error_operator_unavailable: "Этот оператор не в сети", error_not_open: "Диалог закрыт",
    error_empty_message: "Сначала напишите текст", error_text_too_long: "Сообщение слишком длинное",
    error_invalid_text: "В тексте есть символы, которые нельзя отправить",
    error_already_merged: "Этот клиент уже объединён", error_same_lead: "Это тот же клиент",
    error_unavailable: "Хаб сейчас не может это сделать; попробуйте ещё раз", error_rate_limited: "Слишком много попыток; подождите",
    error_invalid_phone: "Это не номер телефона", error_invalid_email: "Это не адрес почты",
    error_files_not_supported: "Этот канал принимает только текст", error_file_too_large: "Файл слишком большой",
    error_too_many_files: "Слишком много файлов сразу", error_no_queue: "Нет такой очереди",
    error_internal: "В хабе что-то пошло не так", error_disconnected: "Нет связи; попробуйте через минуту",
    search: "Поиск", searchPlaceholder: "Поиск: имя, телефон, email, слова…", searchClear: "Очистить поиск",
    searchResults: "Результаты поиска", searchLeads: "Клиенты", searchMessages: "Сообщения",
    searchNothing: "Ничего не найдено", searchShort: "Введите хотя бы два символа",
    shortcut_search: "Поиск клиентов и сообщений", channel: "Канал", allChannels: "все",
    addNote: "Заметка", addNoteHint: "Сохранить как внутреннюю заметку: её видят коллеги, но не клиент",
    noteLabel: "Внутренняя заметка", edited: "изменено", showMore: "Показать целиком", showLess: "Свернуть",
    newDialog: "Новое обращение", suggestedNames: "Имена из каналов", useName: "Взять",
    ho_created: "Диалог открыт", ho_offered: "Предложен:", ho_accepted: "принял(а)", ho_assigned: "Назначен:",
    ho_transferred: "Передан:", ho_expired: "Предложение истекло", ho_closed: "Закрыт", ho_reopened: "Открыт снова",
    historyOnly: "история: это не ваш диалог", writeFirst: "Написать клиенту первым… (Ctrl+Enter — отправить)",
    error_no_conversation: "Клиент не писал в этот канал: некуда отправить",
  },
};

let current = (localStorage.getItem("hub.lang") || navigator.language || "en").startsWith("ru") ? "ru" : "en";

export function lang() { return current; }
export function setLang(value) { current = value in LABELS ? value : "en"; localStorage.setItem("hub.lang", current); }
export function t(key) { return (LABELS[current] && LABELS[current][key]) || LABELS.en[key] || key; }

// The server's error code in the operator's language; its own message when the code is new.
export function errorText(code, message) {
  const key = `error_${code}`;
  return (LABELS[current][key] || LABELS.en[key]) ? t(key) : (message || code);
}

// The language a customer writes in, from their latest words: canned responses prefer it.
export function customerLang(texts) {
  for (const text of texts) {
    if (!text) continue;
    if (/[а-яё]/i.test(text)) return "ru";
    if (/[a-z]/i.test(text)) return "en";
  }
  return current;
}
