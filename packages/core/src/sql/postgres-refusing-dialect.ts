import { type Driver, PostgresDialect, type PostgresDialectConfig, PostgresDriver } from 'kysely';
import { ValidationError } from '../errors.js';
import type { Logger } from '../logger.js';
import { asStoreRefusal, RefusingDriver } from './refusing-driver.js';
import { errorCode, postgresFlavor } from './sql-flavor.js';

const unstorableText = 'The request holds the character U+0000 (NUL), which the database takes in no text';

/**
 * kysely's PostgreSQL dialect, on a {@link RefusingDriver}: a statement, read or write, that the database
 * refuses for a reason other than a lock (a lost connection, a server shutting down, a full disk) throws a
 * `StoreUnavailableError` (a 503), and the connection it was on goes back to the pool discarded. A
 * statement with text that holds U+0000, which input the routes did not check may bring, is a
 * {@link ValidationError} (a 422). The refusals are logged to `logger` (see {@link RefusingDriver}).
 */
export class RefusingPostgresDialect extends PostgresDialect {
  readonly #config: PostgresDialectConfig;
  readonly #logger: Logger | undefined;

  constructor(config: PostgresDialectConfig, logger?: Logger) {
    super(config);
    this.#config = config;
    this.#logger = logger;
  }

  override createDriver(): Driver {
    return new RefusingDriver(new PostgresDriver(this.#config), asPostgresRefusal, { rollBackRefused: true, logger: this.#logger });
  }
}

/** `error`, or the StoreUnavailableError or ValidationError it is. */
function asPostgresRefusal(error: unknown): unknown {
  // character_not_in_repertoire: text with U+0000, which PostgreSQL takes in no text, not even to compare.
  if (errorCode(error) === '22021') return new ValidationError(unstorableText, [], 'validation-failed', error);
  return asStoreRefusal(postgresFlavor, error);
}
